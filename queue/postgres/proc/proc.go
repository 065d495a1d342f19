// Package proc holds what every part of orch that starts child processes
// and names throwaway things shares: stopping a process with a grace period
// (Terminate) and a random suffix for names (RandomHex). pgserver, pgtest,
// dockertest, the benchmark and the end-to-end tests use it. It imports
// nothing of orch, so any package may.
package proc

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"time"
)

// Terminate sends sig to p and waits until done is closed (by whoever waits
// for the process). If that takes longer than grace, it kills p and waits
// for done again. done must be closed once the process has been waited for.
func Terminate(p *os.Process, sig os.Signal, done <-chan struct{}, grace time.Duration) {
	_ = p.Signal(sig) // it may have exited already; done says so
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = p.Kill()
		<-done
	}
}

// RandomHex returns n random bytes as lowercase hex, for names that must
// not collide with those of another run: databases, images, containers,
// nodes.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // it never returns an error (Go 1.24)
	return hex.EncodeToString(b)
}
