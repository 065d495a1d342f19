package dockertest

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Test processes that use the Docker engine through this package hold a
// shared lock on one file for as long as they run (taken by Require), so
// that a timing-sensitive test can ask for the engine to itself with
// Exclusive: `go test ./...` runs packages in parallel, and a test that
// asserts how fast the cluster recovers must not be measuring another
// package's Docker tests instead.
var engineLock struct {
	once sync.Once
	f    *os.File // nil when the lock could not be taken
}

func lockPath() string { return filepath.Join(os.TempDir(), "orch-dockertest.lock") }

// shareEngine takes the shared lock once per process and keeps it until
// the process exits. Without a lock file, tests simply run unlocked.
func shareEngine() {
	engineLock.once.Do(func() {
		f, err := os.OpenFile(lockPath(), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
			f.Close()
			return
		}
		engineLock.f = f
	})
}

// Exclusive calls Require, then waits (up to limit) until no other test
// process is using the Docker engine through this package, and keeps new
// ones waiting in their Require until the test ends. Tests of the same
// process are not held back.
func Exclusive(t testing.TB, limit time.Duration) {
	t.Helper()
	Require(t)
	f := engineLock.f
	if f == nil {
		return
	}
	start := time.Now()
	for {
		// Converting the process's shared lock; it is not atomic, so two
		// processes converting at once cannot deadlock.
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if time.Since(start) > limit {
			t.Logf("dockertest: other test processes still use the Docker engine after %s; going on alongside them", limit)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("dockertest: waited %s for other test processes to leave the Docker engine", waited.Round(time.Second))
	}
	t.Cleanup(func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_SH) })
}
