// Package sql holds orch's schema as goose migrations, embedded in the binary
// so that `orch migrate up` and the coordinator need nothing on disk.
package sql

import "embed"

// Migrations are the numbered goose migrations in this folder.
//
//go:embed *.sql
var Migrations embed.FS
