package agent

import (
	"testing"

	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// TestMain removes, once the tests are done, the workload image that the
// Docker tests built and the private PostgreSQL server that the store's
// tests started, if any.
func TestMain(m *testing.M) { pgtest.Main(m, dockertest.Cleanup) }
