package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue/secrets"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Make API tokens"}
	cmd.AddCommand(&cobra.Command{
		Use:   "generate",
		Short: "Print a new random API token and the sha256: form to configure a coordinator with",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := newToken()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token: %s\nhash:  %s\n", tok, coordinator.HashToken(tok))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "secrets-key FILE",
		Short: "Write a new cluster secrets key to FILE (mode 0600), for every coordinator's and agent's --secrets-key-file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := os.Stat(args[0]); err == nil {
				return usageError{err: fmt.Errorf("%s exists: a new key would make the secrets sealed with the old one unreadable; give another path", args[0])}
			}
			k, err := secrets.EnsureFile(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote secrets key %s to %s\n", k.ID(), args[0])
			return nil
		},
	})
	return cmd
}

// newToken returns 32 random bytes as hex.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return "orch_" + hex.EncodeToString(b), nil
}

// writeTokenFile stores a token where the CLI looks for one, readable by the
// owner only.
func writeTokenFile(path, token string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing token file: %w", err)
	}
	return nil
}
