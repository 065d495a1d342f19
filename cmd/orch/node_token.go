package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/queue/postgres"
)

// newNodeTokenCmd makes the database role an agent connects with. It talks to
// Postgres directly, as the schema's owner: creating roles is not something
// the API offers.
func newNodeTokenCmd() *cobra.Command {
	var revoke bool
	cmd := &cobra.Command{
		Use:   "token NODE",
		Short: "Create (or rotate) the database role of NODE's agent and print how the agent connects",
		Long: `orch node token creates a PostgreSQL role that may act as NODE and nothing else: row-level
security lets it read and change only that node's row, the tasks placed on it and its own stats
and logs. Run it with the database URL of the schema's owner (--database-url / ORCH_DATABASE_URL);
give the printed URL to the agent as its ORCH_DATABASE_URL, and start it with --name NODE.
Running it again gives the role a new password; --revoke drops the role.`,
		Args: exactArgs(1, "give the node's name, as its agent registers it (--name)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := settings(cmd)
			if err != nil {
				return err
			}
			url := v.GetString(config.KeyDatabaseURL)
			if err := requireDB(url); err != nil {
				return err
			}
			store, err := postgres.Open(cmd.Context(), url)
			if err != nil {
				return err
			}
			defer store.Close()
			if revoke {
				if err := store.DropAgentRole(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dropped the role of node %s\n", args[0])
				return nil
			}
			role, err := store.CreateAgentRole(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if v.GetString(config.KeyOutput) == "json" {
				return printJSON(cmd.OutOrStdout(), role)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role %s may act as node %s only\n\nstart its agent with:\n  ORCH_DATABASE_URL='%s' orch agent --name %s\n",
				role.Role, role.Node, role.DatabaseURL, role.Node)
			return nil
		},
	}
	cmd.Flags().String(config.KeyDatabaseURL, "", "PostgreSQL URL of the schema's owner (env ORCH_DATABASE_URL)")
	cmd.Flags().BoolVar(&revoke, "revoke", false, "drop the node's role instead")
	return cmd
}
