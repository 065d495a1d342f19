package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func newVolumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "List and delete named volumes (made by tasks' --volume)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List named volumes, the node each lives on and the live tasks mounting it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			vs, err := client.ListVolumes(cmd.Context())
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			tb := newTable(cmd.OutOrStdout(), "NAME", "NODE", "TASKS", "STATE", "CREATED")
			for _, v := range vs {
				state := "ready"
				switch {
				case v.DeleteRequestedAt != nil && v.Error != "":
					state = "deleting, retrying: " + v.Error
				case v.DeleteRequestedAt != nil:
					state = "deleting"
				}
				tb.row(v.Name, orDash(v.NodeName), strconv.Itoa(v.Tasks), state, age(v.CreatedAt)+" ago")
			}
			return tb.flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a named volume and its data: the agent of its node removes it (refused while a task mounts it)",
		Args:  exactArgs(1, "give the volume's name, as orch volume list prints it"),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, cc, err := clientFor(cmd)
			if err != nil {
				return err
			}
			v, err := client.DeleteVolume(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if cc.Output == "json" {
				return printJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s: deletion requested; the agent of its node removes it\n", v.Name)
			return nil
		},
	})
	return cmd
}
