package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/agent"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
)

// TestVolume_NamedVolumeKeepsDataOnItsNode: a task writes a file into a
// named volume; tasks started after it, on a cluster of two nodes and
// placed to spread, all run on the volume's node and read the file; the
// volume outlives them, is refused deletion while a task mounts it, and is
// removed by its agent once deleted.
func TestVolume_NamedVolumeKeepsDataOnItsNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 2, agentArgs: []string{"--reconcile-interval", "2s"}})
	name := "orch-test-" + proc.RandomHex(6)
	t.Cleanup(func() { _ = c.docker.VolumeRemove(context.Background(), name, true) })

	writer := createTask(t, c, "--volume", name+":/data", "--", "-write-file", "/data/hello=hello from "+name)
	w := c.waitState(writer.ID.String(), 2*time.Minute, terminal)
	if w.State != queue.Completed {
		t.Fatalf("writer ended %s (%s), want completed", w.State, w.Error)
	}
	home := w.NodeName

	var vols []queue.Volume
	c.orchJSON(&vols, "volume", "list")
	var found *queue.Volume
	for i := range vols {
		if vols[i].Name == name {
			found = &vols[i]
		}
	}
	if found == nil || found.NodeName != home {
		t.Fatalf("orch volume list: %+v, want %s on node %s", vols, name, home)
	}
	v, err := c.docker.VolumeInspect(context.Background(), name)
	if err != nil {
		t.Fatalf("the Docker volume: %v", err)
	}
	if v.Labels[agent.LabelVolume] != name || v.Labels[agent.LabelNode] != w.NodeID.String() {
		t.Errorf("Docker volume labels %v, want %s=%s and %s=%s", v.Labels, agent.LabelVolume, name, agent.LabelNode, w.NodeID)
	}

	// Spread would put every other reader on the other node.
	var readers []string
	for i := 0; i < 4; i++ {
		r := createTask(t, c, "--strategy", "spread", "--volume", name+":/data:ro", "--", "-read-file", "/data/hello")
		readers = append(readers, r.ID.String())
	}
	for _, id := range readers {
		r := c.waitState(id, 2*time.Minute, terminal)
		if r.State != queue.Completed || r.NodeName != home {
			t.Errorf("reader %s: %s on %s (%s), want completed on %s", id, r.State, r.NodeName, r.Error, home)
		}
		out, code := c.orch("task", "logs", id)
		if code != 0 || !strings.Contains(out, "hello from "+name) {
			t.Errorf("orch task logs %s: exit %d, %q; want the file's content", id, code, out)
		}
	}

	// A database that lost the row (restored from an older backup) learns
	// it again from the volume's agent.
	db, err := pgxpool.New(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(context.Background(), `DELETE FROM volumes WHERE name = $1`, name); err != nil {
		t.Fatal(err)
	}
	c.eventually(time.Minute, "the agent to report the volume again", func() bool {
		var vols []queue.Volume
		c.orchJSON(&vols, "volume", "list")
		return len(vols) == 1 && vols[0].Name == name && vols[0].NodeName == home
	})

	// A live task that mounts the volume keeps it.
	sleeper := createTask(t, c, "--volume", name+":/data", "--", "-sleep", "forever")
	c.waitState(sleeper.ID.String(), 2*time.Minute, running)
	if out, code := c.orch("volume", "delete", name); code == 0 || !strings.Contains(out, sleeper.ID.String()) {
		t.Errorf("orch volume delete while mounted: exit %d, %q; want a refusal naming task %s", code, out, sleeper.ID)
	}
	if out, code := c.orch("task", "delete", sleeper.ID.String()); code != 0 {
		t.Fatalf("orch task delete: exit %d: %s", code, out)
	}
	c.waitState(sleeper.ID.String(), 2*time.Minute, terminal)

	if out, code := c.orch("volume", "delete", name); code != 0 {
		t.Fatalf("orch volume delete: exit %d: %s", code, out)
	}
	c.eventually(time.Minute, "the volume to be removed", func() bool {
		var vols []queue.Volume
		c.orchJSON(&vols, "volume", "list")
		for _, v := range vols {
			if v.Name == name {
				return false
			}
		}
		return true
	})
	if _, err := c.docker.VolumeInspect(context.Background(), name); !cerrdefs.IsNotFound(err) {
		t.Errorf("Docker volume %s after delete: %v, want not found", name, err)
	}
}

// TestVolume_HostMountsOnlyWhereTheAgentAllows: a task that binds a host
// path goes to the agent started with --allow-host-mounts, writes into the
// host's directory there, and a path outside the agent's prefix is refused.
func TestVolume_HostMountsOnlyWhereTheAgentAllows(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1})
	prefix := t.TempDir()
	allowing := "e2e-mounts-" + proc.RandomHex(4)
	c.startAgent(allowing, "--allow-host-mounts", "--host-mount-prefix", prefix)
	c.waitNodes(2)
	dir := filepath.Join(prefix, "data")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}

	w := createTask(t, c, "--volume", dir+":/data", "--", "-write-file", "/data/hello=from a container")
	got := c.waitState(w.ID.String(), 2*time.Minute, terminal)
	if got.State != queue.Completed || got.NodeName != allowing {
		t.Fatalf("host-mount task: %s on %s (%s), want completed on %s", got.State, got.NodeName, got.Error, allowing)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "hello")); err != nil || string(b) != "from a container\n" {
		t.Errorf("the host's file: %q, %v", b, err)
	}

	outside := t.TempDir()
	r := createTask(t, c, "--volume", outside+":/data", "--", "-logs", "1")
	got = c.waitState(r.ID.String(), 2*time.Minute, terminal)
	if got.State != queue.Failed || !strings.Contains(got.Error, "not below "+prefix) {
		t.Errorf("a host path outside the prefix: %s (%q), want failed, not below %s", got.State, got.Error, prefix)
	}
}
