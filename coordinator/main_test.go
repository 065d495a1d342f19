package coordinator

import (
	"testing"

	"github.com/orchd/orch/queue/postgres/pgtest"
)

// TestMain gives the package's tests a PostgreSQL server: the one named by
// ORCH_TEST_DATABASE_URL, or a private one that is stopped afterwards.
func TestMain(m *testing.M) { pgtest.Main(m) }
