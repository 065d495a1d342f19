package sql

import "embed"

// Migrations are the numbered goose migrations in this folder.
//
//go:embed *.sql
var Migrations embed.FS
