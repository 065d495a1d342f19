package postgres

import (
	"bytes"
	"strings"
	"testing"

	"github.com/orchd/orch/queue"
)

func TestRegistryLogin_AgentReadsOnlyWhileItsNodeHoldsATaskFromThatRegistry(t *testing.T) {
	admin, ctx := newStore(t)
	a, b, nodeA, _ := agentPair(t, admin, "reg", queue.Resources{CPUMillis: 4000, MemoryBytes: 4 << 30, DiskBytes: 4 << 30})
	sealed := []byte("sealed login of reg.example.com")
	if _, err := admin.PutRegistryCredential(ctx, "reg.example.com:5000", "ci", sealed); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutRegistryCredential(ctx, "other.example.com", "ci", []byte("other")); err != nil {
		t.Fatal(err)
	}
	read := func(s *Store, server string) []byte {
		t.Helper()
		got, err := s.RegistryLogin(ctx, server)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(a, "reg.example.com:5000"); got != nil {
		t.Errorf("agent A without a task of the registry reads %q, want nothing", got)
	}
	tk := createSpec(t, admin, queue.TaskSpec{Image: "reg.example.com:5000/team/app:1"})
	pass(t, admin, onNode(nodeA.ID))
	if got := read(a, "reg.example.com:5000"); !bytes.Equal(got, sealed) {
		t.Errorf("agent A with a task of the registry reads %q, want the sealed login", got)
	}
	if got := read(a, "other.example.com"); got != nil {
		t.Errorf("agent A reads another registry's login: %q", got)
	}
	if got := read(b, "reg.example.com:5000"); got != nil {
		t.Errorf("agent B, whose node holds no such task, reads %q", got)
	}
	if _, err := admin.RequestStop(ctx, tk.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got := read(a, "reg.example.com:5000"); got != nil {
		t.Errorf("agent A after its task ended reads %q, want nothing", got)
	}
	if _, err := a.PutRegistryCredential(ctx, "reg.example.com:5000", "evil", []byte("x")); !forbidden(err) {
		t.Errorf("an agent writing a login: %v, want refused", err)
	}
	creds, err := admin.ListRegistryCredentials(ctx)
	if err != nil || len(creds) != 2 || creds[1].Server != "reg.example.com:5000" || creds[1].Username != "ci" {
		t.Errorf("ListRegistryCredentials: %+v, %v", creds, err)
	}
}

// TestImageRegistry_SQLAgreesWithGo: the policy's orch_image_registry and
// the agent's queue.ImageRegistry name the same registry for an image.
func TestImageRegistry_SQLAgreesWithGo(t *testing.T) {
	s, ctx := newStore(t)
	for _, img := range []string{
		"alpine", "alpine:3.20", "library/alpine", "team/app:1", "docker.io/library/alpine",
		"reg.example.com/app", "Reg.Example.com/team/app:1", "127.0.0.1:5000/orch-workload:x",
		"localhost/app", "localhost:5000/app@sha256:" + strings.Repeat("a", 64), "localhost", "host:5000",
	} {
		var got string
		if err := s.pool.QueryRow(ctx, `SELECT orch_image_registry($1)`, img).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := queue.ImageRegistry(img); got != want {
			t.Errorf("%s: SQL says %q, Go %q", img, got, want)
		}
	}
}
