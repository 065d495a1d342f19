//go:build !linux

package postgres

import "syscall"

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist; the
// keepalives and the call deadlines still hold.
func setUserTimeout(string, string, syscall.RawConn) error { return nil }
