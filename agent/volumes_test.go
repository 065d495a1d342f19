package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"

	"github.com/orchd/orch/queue"
)

func TestDockerConfig_Mounts(t *testing.T) {
	t.Parallel()
	_, hc, err := dockerConfig(ContainerSpec{Image: "x", Mounts: []queue.Mount{
		{Source: "data", Target: "/data"}, {Source: "/srv/orch/cfg", Target: "/cfg", ReadOnly: true},
	}}, "json-file")
	if err != nil {
		t.Fatal(err)
	}
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "data", Target: "/data"},
		{Type: mount.TypeBind, Source: "/srv/orch/cfg", Target: "/cfg", ReadOnly: true},
	}
	if len(hc.Mounts) != 2 || hc.Mounts[0].Type != want[0].Type || hc.Mounts[0].Source != "data" ||
		hc.Mounts[1].Type != want[1].Type || !hc.Mounts[1].ReadOnly || hc.Mounts[1].Target != "/cfg" {
		t.Errorf("mounts %+v, want %+v", hc.Mounts, want)
	}
}

func TestAgent_HostMounts_OnlyBelowThePrefixOfAnAgentThatAllows(t *testing.T) {
	t.Parallel()
	prefix := t.TempDir()
	inside := filepath.Join(prefix, "in")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	escape := filepath.Join(prefix, "escape") // a link out of the prefix
	if err := os.Symlink(outside, escape); err != nil {
		t.Fatal(err)
	}
	task := func(src string) *queue.Task {
		return &queue.Task{TaskSpec: queue.TaskSpec{Volumes: []queue.Mount{{Source: "named", Target: "/n"}, {Source: src, Target: "/h"}}}}
	}
	allows := &Agent{opts: Options{AllowHostMounts: true, HostMountPrefix: prefix}, node: queue.Node{Name: "n1"}}
	refuses := &Agent{opts: Options{HostMountPrefix: prefix}, node: queue.Node{Name: "n2"}}
	for _, tc := range []struct {
		a    *Agent
		src  string
		want string // "" for allowed
	}{
		{allows, inside, ""},
		{allows, prefix, ""},
		{allows, outside, "is not below"},
		{allows, prefix + "x", "is not below"},
		{allows, escape, "is not below"},
		{refuses, inside, "does not allow host mounts"},
	} {
		_, err := tc.a.hostMounts(task(tc.src))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s on %s: %v, want allowed", tc.src, tc.a.node.Name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s on %s: %v, want %q", tc.src, tc.a.node.Name, err, tc.want)
		}
	}
	if _, err := refuses.hostMounts(&queue.Task{TaskSpec: queue.TaskSpec{Volumes: []queue.Mount{{Source: "named", Target: "/n"}}}}); err != nil {
		t.Errorf("named volumes only: %v", err)
	}
	// What the engine is told to bind is the path that was checked.
	link := filepath.Join(prefix, "link")
	if err := os.Symlink(inside, link); err != nil {
		t.Fatal(err)
	}
	got, err := allows.hostMounts(task(link))
	real, _ := filepath.EvalSymlinks(inside)
	if err != nil || got[1].Source != real || got[0].Source != "named" {
		t.Errorf("a link below the prefix: %+v, %v; want it bound as %s", got, err, real)
	}
}
