package agent

import (
	"fmt"
	"os"
	"testing"

	"github.com/orchd/orch/agent/dockertest"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Remove the workload image that the Docker tests built, if any, and
	// the private PostgreSQL server that the agent tests started, if any.
	dockertest.Cleanup()
	// Stop the private PostgreSQL that the store tests started, if any.
	if err := pgtest.Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
