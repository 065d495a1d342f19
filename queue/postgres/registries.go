package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/orchd/orch/queue"
)

// This file holds private registries' logins (00041_registry_credentials):
// the coordinators store them sealed; agents read the one of the registry
// they are about to pull from.

const registryCols = `server, username, created_at, updated_at`

func scanRegistry(row pgx.Row) (queue.RegistryCredential, error) {
	var r queue.RegistryCredential
	err := row.Scan(&r.Server, &r.Username, &r.CreatedAt, &r.UpdatedAt)
	return r, err
}

// PutRegistryCredential stores (or replaces) server's login; sealed holds
// the username and password sealed with the cluster's key for
// queue.RegistrySealID(server). The store never sees the password.
func (s *Store) PutRegistryCredential(ctx context.Context, server, username string, sealed []byte) (queue.RegistryCredential, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	r, err := scanRegistry(s.pool.QueryRow(ctx, `INSERT INTO registry_credentials (server, username, sealed)
VALUES ($1, $2, $3)
ON CONFLICT (server) DO UPDATE SET username = EXCLUDED.username, sealed = EXCLUDED.sealed, updated_at = now()
RETURNING `+registryCols, server, username, sealed))
	if err != nil {
		return queue.RegistryCredential{}, translate(err, "storing the login of registry "+server)
	}
	return r, nil
}

// ListRegistryCredentials returns the registries orch has logins for, by
// server: no password.
func (s *Store) ListRegistryCredentials(ctx context.Context) ([]queue.RegistryCredential, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return queryAll(ctx, s, "listing registries", scanRegistry,
		`SELECT `+registryCols+` FROM registry_credentials ORDER BY server`)
}

// DeleteRegistryCredential forgets server's login (queue.ErrNotFound when
// there is none).
func (s *Store) DeleteRegistryCredential(ctx context.Context, server string) (queue.RegistryCredential, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	r, err := scanRegistry(s.pool.QueryRow(ctx, `DELETE FROM registry_credentials WHERE server = $1 RETURNING `+registryCols, server))
	if err != nil {
		return queue.RegistryCredential{}, translate(err, "registry "+server)
	}
	return r, nil
}

// RegistryLogin returns server's sealed login for an agent about to pull
// from it (nil when orch has none, or the agent's node holds no task of an
// image from that server: its role may not read it then).
func (s *Store) RegistryLogin(ctx context.Context, server string) ([]byte, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT sealed FROM registry_credentials WHERE server = $1`, server).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err, "reading the login of registry "+server)
	}
	return sealed, nil
}
