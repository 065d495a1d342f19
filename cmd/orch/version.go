package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time for releases:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/orch
//
// Without them, the module version and the VCS stamp that the Go toolchain
// records in the binary are used.
var (
	version = ""
	commit  = ""
)

// buildVersion returns the version, commit (with "+dirty" when built from
// modified sources) and build time known for this binary.
func buildVersion() (ver, rev, built string) {
	ver, rev = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if ver == "" {
			ver = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				built = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && rev != "" {
			rev += "+dirty"
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev, built
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print orch's version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ver, rev, built := buildVersion()
			out := cmd.OutOrStdout()
			if v, _ := cmd.Flags().GetString("output"); v == "json" {
				return printJSON(out, map[string]string{"version": ver, "commit": rev, "built": built, "go": runtime.Version()})
			}
			fmt.Fprintf(out, "orch %s\ncommit %s\n", ver, rev)
			if built != "" {
				fmt.Fprintf(out, "built %s\n", built)
			}
			fmt.Fprintf(out, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
