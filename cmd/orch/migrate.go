package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/config"
	"github.com/orchd/orch/queue/postgres"
)

func newMigrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply or inspect the database schema"}
	cmd.PersistentFlags().String(config.KeyDatabaseURL, "", "PostgreSQL URL (env ORCH_DATABASE_URL)")
	dbURL := func(cmd *cobra.Command) (string, error) {
		v, err := settings(cmd)
		if err != nil {
			return "", err
		}
		url := v.GetString(config.KeyDatabaseURL)
		return url, requireDB(url)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := dbURL(cmd)
			if err != nil {
				return err
			}
			applied, err := postgres.MigrateUp(cmd.Context(), url)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
			}
			for _, m := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", m)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := dbURL(cmd)
			if err != nil {
				return err
			}
			states, err := postgres.MigrationStatus(cmd.Context(), url)
			if err != nil {
				return err
			}
			_, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), states)
			}
			tb := newTable(cmd.OutOrStdout(), "VERSION", "MIGRATION", "APPLIED")
			for _, s := range states {
				at := "pending"
				if s.Applied {
					at = s.AppliedAt.Format(time.RFC3339)
				}
				tb.row(fmt.Sprint(s.Version), s.Source, at)
			}
			return tb.flush()
		},
	})
	return cmd
}
