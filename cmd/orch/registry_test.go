package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres/proc"
	"github.com/orchd/orch/queue/postgres/storetest"
	"github.com/orchd/orch/queue/secrets"
)

// startRegistry runs Debian's docker-registry (the reference registry) on
// loopback with basic auth for user and password, until the test ends, and
// returns its host:port.
func startRegistry(t *testing.T, user, password string) string {
	t.Helper()
	for _, bin := range []string{"/usr/bin/docker-registry", "htpasswd"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (apt-get install docker-registry apache2-utils): %v", bin, err)
			}
			t.Skipf("%s is missing (apt-get install docker-registry apache2-utils): %v", bin, err)
		}
	}
	dir := t.TempDir()
	hash, err := exec.Command("htpasswd", "-Bbn", user, password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, hash, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := storetest.FreeAddr(t)
	cfg := filepath.Join(dir, "config.yml")
	yaml := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: orch-test
    path: %s
`, filepath.Join(dir, "data"), addr, htpasswd)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command("/usr/bin/docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry did not answer 401 on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushPrivate pushes the workload image to the registry as ref, with the
// login, and removes the tag locally, so that running ref needs a pull.
func pushPrivate(t *testing.T, c *cluster, ref, server, user, password string) {
	t.Helper()
	ctx := context.Background()
	if err := c.docker.ImageTag(ctx, c.image, ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.docker.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true}) })
	auth, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: user, Password: password, ServerAddress: server})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.docker.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	dec := json.NewDecoder(rc)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("push %s: %v", ref, err)
			}
			break
		}
		if msg.Error != "" {
			t.Fatalf("push %s: %s", ref, msg.Error)
		}
	}
	rc.Close()
	if _, err := c.docker.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatalf("untag %s: %v", ref, err)
	}
}

// TestRegistry_LoginLetsAgentsPullPrivateImages: an image in a registry
// with basic auth fails to pull without a login and runs after orch
// registry login; the password shows in no answer, event or log line, and
// the database holds it sealed.
func TestRegistry_LoginLetsAgentsPullPrivateImages(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "secrets.key")
	if _, err := secrets.EnsureFile(key); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, clusterOpts{coordinators: 1, agents: 1,
		coordArgs: []string{"--secrets-key-file", key}, agentArgs: []string{"--secrets-key-file", key}})
	user, password := "orch-"+proc.RandomHex(3), "pw-"+proc.RandomHex(16)
	server := startRegistry(t, user, password)
	ref := server + "/orch-workload:" + proc.RandomHex(4)
	pushPrivate(t, c, ref, server, user, password)

	run := func() queue.Task {
		t.Helper()
		var tk queue.Task
		c.orchJSON(&tk, "task", "create", "--image", ref, "--", "-logs", "1")
		return c.waitState(tk.ID.String(), 2*time.Minute, terminal).Task
	}
	denied := run()
	t.Logf("without a login: %s", denied.Error)
	if denied.State != queue.Failed || !strings.Contains(denied.Error, "pull") {
		t.Fatalf("without a login: %s (%q), want failed on the pull", denied.State, denied.Error)
	}

	login := exec.Command(orchBin, "registry", "login", "http://"+server+"/", "--username", user, "--password-stdin")
	login.Env = c.env()
	login.Stdin = strings.NewReader(password + "\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("orch registry login: %v\n%s", err, out)
	}
	var creds []queue.RegistryCredential
	c.orchJSON(&creds, "registry", "list")
	if len(creds) != 1 || creds[0].Server != server || creds[0].Username != user {
		t.Fatalf("orch registry list: %+v, want %s as %s", creds, server, user)
	}

	pulled := run()
	if pulled.State != queue.Completed {
		t.Fatalf("after login: %s (%q), want completed", pulled.State, pulled.Error)
	}
	if out, code := c.orch("task", "logs", pulled.ID.String()); code != 0 || !strings.Contains(out, "line 1") {
		t.Errorf("orch task logs: exit %d, %q; want the task's output", code, out)
	}

	// Nothing shows the password: the CLI's and API's answers, the tasks'
	// events, the processes' logs, the database's copy.
	var seen []string
	for _, args := range [][]string{
		{"-o", "json", "registry", "list"}, {"registry", "list"},
		{"-o", "json", "task", "get", denied.ID.String()}, {"-o", "json", "task", "get", pulled.ID.String()},
		{"-o", "json", "task", "list"}, {"task", "logs", pulled.ID.String()},
	} {
		out, _ := c.orch(args...)
		seen = append(seen, out)
	}
	c.mu.Lock()
	for name, buf := range c.logs {
		seen = append(seen, name+": "+buf.String())
	}
	c.mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, password) {
			t.Errorf("the password shows in %q", s)
		}
	}
	db, err := pgxpool.New(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sealed []byte
	if err := db.QueryRow(context.Background(), `SELECT sealed FROM registry_credentials WHERE server = $1`, server).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(password)) {
		t.Error("the database holds the password in clear")
	}

	if out, code := c.orch("registry", "logout", server); code != 0 {
		t.Fatalf("orch registry logout: exit %d: %s", code, out)
	}
	c.orchJSON(&creds, "registry", "list")
	if len(creds) != 0 {
		t.Errorf("after logout: %+v, want none", creds)
	}
}
