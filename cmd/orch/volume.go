package main

import (
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
)

func newVolumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "List and delete named volumes (made by tasks' --volume)"}
	cmd.AddCommand(readingCmd(command("list", "List named volumes, the node each lives on and the live tasks mounting it", cobra.NoArgs),
		listing((*coordinator.Client).ListVolumes), func(w io.Writer, _ []string, vs []queue.Volume) error {
			tb := newTable(w, "NAME", "NODE", "TASKS", "STATE", "CREATED")
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
		}))
	cmd.AddCommand(readingCmd(command("delete NAME",
		"Delete a named volume and its data: the agent of its node removes it (refused while a task mounts it)",
		exactArgs(1, "give the volume's name, as orch volume list prints it")),
		byName((*coordinator.Client).DeleteVolume),
		line("volume %s: deletion requested; the agent of its node removes it\n", func(v queue.Volume) []any { return []any{v.Name} })))
	return cmd
}
