package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgserver"
	"github.com/orchd/orch/queue/postgres/pgtest"
	"github.com/orchd/orch/queue/secrets"
)

// secretValue is what no answer, error or dump may ever contain.
const secretValue = "s3cr3t-Value-9f2e7c"

func testKey(t *testing.T) *secrets.Key {
	t.Helper()
	text, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := secrets.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// send makes one request and returns the status and the whole answer.
func send(t *testing.T, h *Coordinator, method, path, token, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// A task's secrets go in with a write token and never come out: not to a
// read token, not in events, not in errors, not in a dump of the database.
func TestSecrets_WriteOnlyAndSealedAtRest(t *testing.T) {
	t.Parallel()
	url := pgtest.New(t)
	store, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c, err := New(store, Options{Tokens: tokens(t), SecretsKey: testKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"name":"api","image":"app:1","env":{"MODE":"prod"},"secrets":{"DB_PASSWORD":"` + secretValue + `"}}`
	code, created := send(t, c, "POST", "/tasks", writeSecret, body)
	if code != 201 {
		t.Fatalf("create with secrets: %d %s", code, created)
	}
	var task struct {
		ID         string            `json:"id"`
		Env        map[string]string `json:"env"`
		SecretKeys []string          `json:"secret_keys"`
	}
	if err := json.Unmarshal([]byte(created), &task); err != nil {
		t.Fatal(err)
	}
	if len(task.SecretKeys) != 1 || task.SecretKeys[0] != "DB_PASSWORD" || task.Env["MODE"] != "prod" {
		t.Errorf("created task: env %v, secret keys %v", task.Env, task.SecretKeys)
	}
	answers := []string{created}
	for _, path := range []string{"/tasks", "/tasks/" + task.ID, "/tasks/" + task.ID + "/logs", "/"} {
		code, got := send(t, c, "GET", path, readSecret, "")
		if code != 200 {
			t.Errorf("GET %s with a read token: %d", path, code)
		}
		answers = append(answers, got)
	}
	if _, got := send(t, c, "GET", "/tasks/"+task.ID, readSecret, ""); !strings.Contains(got, `"MODE": "prod"`) {
		t.Errorf("a read token does not see the plain env: %s", got)
	}
	// Errors quote no value: a bad name, a clash with env, a cluster without a key.
	for _, bad := range []string{
		`{"image":"app:1","secrets":{"1BAD":"` + secretValue + `"}}`,
		`{"image":"app:1","env":{"X":"1"},"secrets":{"X":"` + secretValue + `"}}`,
	} {
		code, got := send(t, c, "POST", "/tasks", writeSecret, bad)
		if code != 400 || !strings.Contains(got, `"field": "secrets"`) {
			t.Errorf("bad secrets: %d %s", code, got)
		}
		answers = append(answers, got)
	}
	keyless, err := New(store, Options{Tokens: tokens(t)})
	if err != nil {
		t.Fatal(err)
	}
	code, got := send(t, keyless, "POST", "/tasks", writeSecret, body)
	if code != 400 || !strings.Contains(got, "secrets-key-file") {
		t.Errorf("a coordinator without a key took secrets: %d %s", code, got)
	}
	answers = append(answers, got)
	for i, a := range answers {
		if strings.Contains(a, secretValue) {
			t.Errorf("answer %d shows the secret: %s", i, a)
		}
	}

	// At rest: a dump of the whole database holds the name, not the value.
	bin, err := pgserver.FindBinaries()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	out, err := exec.Command(filepath.Join(bin, "pg_dump"), "--data-only", url).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(task.ID)) || !bytes.Contains(out, []byte("DB_PASSWORD")) {
		t.Fatalf("the dump does not hold the task (%d bytes)", len(out))
	}
	if bytes.Contains(out, []byte(secretValue)) {
		t.Error("pg_dump of the database contains the secret in clear")
	}
}
