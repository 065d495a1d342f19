package agent

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/registry"

	"github.com/orchd/orch/queue"
)

// registryAuth returns the login for pulling the task's image, read from
// the database only when the runtime must pull (see ContainerSpec) and
// opened with the cluster's key: "" when orch has no login for the image's
// registry, or the node has no key (an anonymous pull, which a private
// registry refuses with its own words). Its errors name no password.
func (a *Agent) registryAuth(t *queue.Task) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		server := queue.ImageRegistry(t.Image)
		var sealed []byte
		err := retry(ctx, a.log, "reading a registry login", func(ctx context.Context) error {
			var err error
			sealed, err = a.store.RegistryLogin(ctx, server)
			return err
		})
		if err != nil {
			return "", err
		}
		if sealed == nil {
			return "", nil
		}
		if a.opts.SecretsKey == nil {
			return "", fmt.Errorf("orch has a login for registry %s, but node %s has no secrets key to open it: start its agent with --secrets-key-file (the coordinators' key)", server, a.node.Name)
		}
		login, err := a.opts.SecretsKey.Open(queue.RegistrySealID(server), sealed)
		if err != nil {
			return "", fmt.Errorf("login of registry %s: %w", server, err)
		}
		return registry.EncodeAuthConfig(registry.AuthConfig{Username: login["username"], Password: login["password"], ServerAddress: server})
	}
}
