package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Logins to private registries, which agents use to pull images"}
	var username string
	var passwordStdin bool
	login := &cobra.Command{
		Use:   "login SERVER --username USER --password-stdin",
		Short: "Store a registry's login for the cluster (sealed with its secrets key; the password is never shown again)",
		Example: `  echo "$TOKEN" | orch registry login registry.example.com --username ci --password-stdin
  orch registry login 127.0.0.1:5000 --username me --password-stdin < password.txt`,
		Args: exactArgs(1, "give the registry's host[:port], as in image names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			server, err := queue.NormalizeRegistry(args[0])
			if err != nil {
				return err
			}
			if username == "" {
				return queue.Invalid("username", "a username is required", "give --username USER")
			}
			if !passwordStdin {
				// Not as a flag: it would stay in the shell's history and
				// in every process listing.
				return queue.Invalid("password-stdin", "the password is read from stdin only", "pipe it in and give --password-stdin")
			}
			b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), coordinator.MaxRegistryPassword+1))
			if err != nil {
				return fmt.Errorf("reading the password from stdin: %w", err)
			}
			password := strings.TrimRight(string(b), "\r\n")
			if password == "" {
				return queue.Invalid("password-stdin", "stdin held no password", "pipe the password in")
			}
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			cred, err := client.RegistryLogin(cmd.Context(), server, coordinator.RegistryLogin{Username: username, Password: password})
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), cred)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "login for %s stored (user %s); agents use it to pull its images\n", cred.Server, cred.Username)
			return nil
		},
	}
	login.Flags().StringVarP(&username, "username", "u", "", "the registry user")
	login.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password (or token) from stdin")
	cmd.AddCommand(login)
	cmd.AddCommand(readingCmd(command("list", "List the registries the cluster has logins for (server and user; never a password)", cobra.NoArgs),
		listing((*coordinator.Client).ListRegistries), func(w io.Writer, _ []string, creds []queue.RegistryCredential) error {
			tb := newTable(w, "SERVER", "USERNAME", "UPDATED")
			for _, r := range creds {
				tb.row(r.Server, r.Username, r.UpdatedAt.Format(time.RFC3339))
			}
			return tb.flush()
		}))
	cmd.AddCommand(&cobra.Command{
		Use:   "logout SERVER",
		Short: "Forget a registry's login",
		Args:  exactArgs(1, "give the registry's host[:port], as orch registry list prints it"),
		RunE: func(cmd *cobra.Command, args []string) error {
			server, err := queue.NormalizeRegistry(args[0])
			if err != nil {
				return err
			}
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			cred, err := client.RegistryLogout(cmd.Context(), server)
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), cred)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "login for %s removed\n", cred.Server)
			return nil
		},
	})
	return cmd
}
