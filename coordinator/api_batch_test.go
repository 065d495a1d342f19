package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// postTasks POSTs body to /tasks with token and decodes the answer into out
// (an error answer into an ErrorBody, returned).
func postTasks(t *testing.T, url, token, body string, out any) (int, ErrorBody) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/tasks", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb ErrorBody
	if resp.StatusCode >= 400 {
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("decoding the answer (%d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, eb
}

func (r *apiRig) taskCount() int {
	r.t.Helper()
	ts, err := r.store.ListTasks(context.Background(), postgres.TaskFilter{})
	if err != nil {
		r.t.Fatal(err)
	}
	return len(ts)
}

// An array of tasks is stored in one go and answered with an array, in the
// order sent, each task with its own warnings.
func TestAPI_CreateTask_ArrayStoresEveryTask(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	r.node("n1") // 2 cores, 4 GiB
	var got []CreatedTask
	code, eb := postTasks(t, r.srv.URL, "", `[
  {"name": "a", "image": "workload:test", "command": ["-sleep", "1s"]},
  {"image": "workload:test", "memory": "100GiB"},
  {"name": "c", "image": "workload:test", "cpu": "500m"}
]`, &got)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %+v, want 201", code, eb)
	}
	if len(got) != 3 || got[0].Name != "a" || got[2].Name != "c" || got[2].Resources.CPUMillis != 500 {
		t.Fatalf("answer %+v, want tasks a, (unnamed), c in that order", got)
	}
	for i, tk := range got {
		if tk.State != queue.Pending && tk.State != queue.Scheduled {
			t.Errorf("task [%d] is %s", i, tk.State)
		}
		if wantWarn := i == 1; (len(tk.Warnings) > 0) != wantWarn {
			t.Errorf("task [%d] warnings %q", i, tk.Warnings)
		}
	}
	if n := r.taskCount(); n != 3 {
		t.Errorf("%d tasks stored, want 3", n)
	}
}

// A bad element fails the whole array with 400 naming it (its index and
// field), and nothing is stored.
func TestAPI_CreateTask_ArrayWithABadElementStoresNothing(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ok := `{"image": "workload:test"}`
	id := uuid.Must(uuid.NewV7()).String()
	for _, tc := range []struct{ body, field string }{
		{`[` + ok + `, ` + ok + `, ` + ok + `, {"cpu": "1"}]`, "[3].image"},
		{`[` + ok + `, {"image": "workload:test", "bogus": 1}]`, "[1].bogus"},
		{`[` + ok + `, {"image": "workload:test", "cpu": "lots"}]`, "[1].cpu"},
		{`[` + ok + `, 7]`, "[1]"},
		{`[{"id": "` + id + `", "image": "a:1"}, {"id": "` + id + `", "image": "b:1"}]`, "[1].id"},
		{`[]`, "body"},
		{`[` + strings.Repeat(ok+",", 1000) + ok + `]`, "body"},
	} {
		var got []CreatedTask
		code, eb := postTasks(t, r.srv.URL, "", tc.body, &got)
		if code != http.StatusBadRequest || eb.Field != tc.field {
			t.Errorf("%.60s: %d %+v, want 400 naming %s", tc.body, code, eb, tc.field)
		}
	}
	if n := r.taskCount(); n != 0 {
		t.Errorf("%d tasks stored, want none", n)
	}
}

// An array sent again with the ids its client chose answers 200 with the
// tasks it made; an element whose id exists with another spec, or whose
// name a live task has, fails the array with 409 naming that element.
func TestAPI_CreateTask_ArrayAgainIsIdempotent(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	ids := []string{uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()}
	body := fmt.Sprintf(`[{"id": %q, "name": "x", "image": "workload:test"}, {"id": %q, "image": "workload:test", "cpu": 0.5}]`, ids[0], ids[1])
	var first, again []CreatedTask
	if code, eb := postTasks(t, r.srv.URL, "", body, &first); code != http.StatusCreated {
		t.Fatalf("first POST: %d %+v", code, eb)
	}
	if code, eb := postTasks(t, r.srv.URL, "", body, &again); code != http.StatusOK {
		t.Fatalf("same array again: %d %+v, want 200", code, eb)
	}
	for i := range ids {
		if again[i].ID.String() != ids[i] || again[i].Name != first[i].Name {
			t.Errorf("task [%d] again: %s %s, want %s %s", i, again[i].ID, again[i].Name, ids[i], first[i].Name)
		}
	}
	for _, tc := range []struct{ body, says string }{
		{fmt.Sprintf(`[{"image": "workload:test"}, {"id": %q, "image": "workload:test", "cpu": 1}]`, ids[1]), "another spec"},
		{`[{"image": "workload:test"}, {"image": "workload:test"}, {"name": "x", "image": "workload:test"}]`, ids[0]},
	} {
		var got []CreatedTask
		code, eb := postTasks(t, r.srv.URL, "", tc.body, &got)
		wantField := "[1]"
		if strings.Contains(tc.body, `"name": "x"`) {
			wantField = "[2]"
		}
		if code != http.StatusConflict || eb.Field != wantField || !strings.Contains(eb.Error, tc.says) {
			t.Errorf("%.70s: %d %+v, want 409 naming %s and saying %q", tc.body, code, eb, wantField, tc.says)
		}
	}
	if n := r.taskCount(); n != 2 {
		t.Errorf("%d tasks stored, want 2", n)
	}
}

// A privileged element needs an admin token as a single privileged task
// does: with a write token the whole array is refused.
func TestAPI_CreateTask_ArrayNeedsTheScopeOfEachTask(t *testing.T) {
	t.Parallel()
	r := newAPIRigWith(t, Options{Tokens: tokens(t)})
	body := `[{"image": "workload:test"}, {"image": "workload:test", "privileged": true}]`
	var got []CreatedTask
	if code, eb := postTasks(t, r.srv.URL, readSecret, `[{"image": "workload:test"}]`, &got); code != http.StatusForbidden {
		t.Errorf("read token: %d %+v, want 403", code, eb)
	}
	if code, eb := postTasks(t, r.srv.URL, writeSecret, body, &got); code != http.StatusForbidden || !strings.Contains(eb.Error, "task [1]") {
		t.Errorf("write token: %d %+v, want 403 naming task [1]", code, eb)
	}
	mounts := `[{"image": "workload:test", "volumes": [{"source": "data", "target": "/data"}]},
  {"image": "workload:test"}, {"image": "workload:test", "volumes": [{"source": "/srv/orch/x", "target": "/data"}]}]`
	if code, eb := postTasks(t, r.srv.URL, writeSecret, mounts, &got); code != http.StatusForbidden || !strings.Contains(eb.Error, "task [2], with host mounts") {
		t.Errorf("write token, a host mount: %d %+v, want 403 naming task [2]", code, eb)
	}
	if n := r.taskCount(); n != 0 {
		t.Errorf("%d tasks stored after refusals, want none", n)
	}
	if code, eb := postTasks(t, r.srv.URL, adminSecret, body, &got); code != http.StatusCreated || len(got) != 2 || !got[1].Privileged {
		t.Errorf("admin token: %d %+v %+v, want 201 and both tasks", code, eb, got)
	}
	if code, eb := postTasks(t, r.srv.URL, adminSecret, mounts, &got); code != http.StatusCreated || len(got) != 3 ||
		len(got[0].Volumes) != 1 || got[0].Volumes[0].Source != "data" || got[2].Volumes[0].Source != "/srv/orch/x" {
		t.Errorf("admin token, mounts: %d %+v %+v, want 201 and the tasks with their volumes", code, eb, got)
	}
}

// Client.CreateTasks sends its ids, gets the tasks back in order, and an
// error about one task names it by its index.
func TestClient_CreateTasks(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	client, _ := NewClient(r.srv.URL, "")
	ctx := context.Background()
	reqs := []TaskRequest{{Name: "one", Image: "workload:test"}, {ID: uuid.Must(uuid.NewV7()).String(), Image: "workload:test"}}
	got, err := client.CreateTasks(ctx, reqs)
	if err != nil || len(got) != 2 || got[0].Name != "one" || got[1].ID.String() != reqs[1].ID || reqs[0].ID != "" {
		t.Fatalf("CreateTasks: %+v, %v", got, err)
	}
	_, err = client.CreateTasks(ctx, []TaskRequest{{Image: "workload:test"}, {Name: "one", Image: "workload:test"}})
	var ae *APIError
	if !errors.As(err, &ae) || !errors.Is(err, queue.ErrConflict) || ae.Field != "[1]" {
		t.Fatalf("a live name again: %v, want a conflict about [1]", err)
	}
}

// Each task of an array has its secrets sealed for its own id, as a single
// create's are: the answer names them and holds no value, and a cluster
// without a key refuses the array naming the element.
func TestAPI_CreateTask_ArraySealsEachTasksSecrets(t *testing.T) {
	t.Parallel()
	r := newAPIRigWith(t, Options{SecretsKey: testKey(t)})
	body := `[{"image": "workload:test"}, {"image": "workload:test", "secrets": {"DB_PASSWORD": "` + secretValue + `"}},
  {"image": "workload:test", "secrets": {"TOKEN": "` + secretValue + `"}}]`
	var got []CreatedTask
	code, eb := postTasks(t, r.srv.URL, "", body, &got)
	if code != http.StatusCreated || len(got) != 3 {
		t.Fatalf("POST: %d %+v", code, eb)
	}
	if len(got[0].SecretKeys) != 0 || len(got[1].SecretKeys) != 1 || got[2].SecretKeys[0] != "TOKEN" {
		t.Errorf("secret keys %v %v %v", got[0].SecretKeys, got[1].SecretKeys, got[2].SecretKeys)
	}
	if b, _ := json.Marshal(got); strings.Contains(string(b), secretValue) {
		t.Error("the answer holds a secret's value")
	}
	plain := newAPIRig(t)
	if code, eb := postTasks(t, plain.srv.URL, "", body, &got); code != http.StatusBadRequest || eb.Field != "[1].secrets" {
		t.Errorf("no secrets key: %d %+v, want 400 naming [1].secrets", code, eb)
	}
}

// A batch whose answer is lost after it was stored is sent again with the
// same ids: the user gets the tasks it made, once each.
func TestClient_CreateTasks_AnswerLostIsSentAgainAndMakesEachTaskOnce(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, Options{})
	api := c.Handler()
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && posts.Add(1) == 1 {
			api.ServeHTTP(httptest.NewRecorder(), r) // stored, and the answer is lost
			panic(http.ErrAbortHandler)
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client, _ := NewClient(srv.URL, "")
	var retried atomic.Int32
	client.RetryCreates(30*time.Second, func(error, time.Duration) { retried.Add(1) })
	got, err := client.CreateTasks(context.Background(), []TaskRequest{{Name: "a", Image: "workload:test"}, {Name: "b", Image: "workload:test"}})
	if err != nil || len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Fatalf("CreateTasks across a lost answer: %+v, %v", got, err)
	}
	if posts.Load() != 2 || retried.Load() != 1 {
		t.Errorf("%d POSTs, %d retries; want 2 and 1", posts.Load(), retried.Load())
	}
	tasks, err := c.store.ListTasks(context.Background(), postgres.TaskFilter{})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("%d tasks stored (%v), want 2", len(tasks), err)
	}
}
