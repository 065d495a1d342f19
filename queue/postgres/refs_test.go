package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	orchsql "github.com/orchd/orch/sql"
)

func TestStore_ResolveTask_ByNameIDStartOrEnd(t *testing.T) {
	s, ctx := newStore(t)
	old := createSpec(t, s, queue.TaskSpec{Name: "web"})
	if _, err := s.RequestStop(ctx, old.ID, "test"); err != nil {
		t.Fatal(err)
	}
	web := createSpec(t, s, queue.TaskSpec{Name: "web"}) // the name is free again
	other := createSpec(t, s, queue.TaskSpec{Name: "other"})
	done := createSpec(t, s, queue.TaskSpec{Name: "done"})
	if _, err := s.RequestStop(ctx, done.ID, "test"); err != nil {
		t.Fatal(err)
	}
	full := web.ID.String()
	for ref, want := range map[string]uuid.UUID{
		"web":                                  web.ID, // the live one
		"done":                                 done.ID,
		full:                                   web.ID,
		strings.ToUpper(full):                  web.ID,
		full[:23]:                              web.ID, // with its hyphens
		strings.ReplaceAll(full, "-", "")[:24]: web.ID,
		queue.ShortID(other.ID):                other.ID, // as the status page prints it
	} {
		got, err := s.ResolveTask(ctx, ref)
		if err != nil || got != want {
			t.Errorf("ResolveTask(%q) = %s, %v; want %s", ref, got, err, want)
		}
	}
	// Ids made together share their first digits (UUIDv7: a timestamp).
	_, err := s.ResolveTask(ctx, full[:4])
	if !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), web.ID.String()) || !strings.Contains(err.Error(), other.ID.String()) {
		t.Errorf("an id start shared by several tasks: %v, want invalid input listing them", err)
	}
	if _, err := s.ResolveTask(ctx, "nothing"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("an unknown name: %v, want not found", err)
	}
	if _, err := s.ResolveTask(ctx, "ffffffffffff"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("an unknown id end: %v, want not found", err)
	}
	// Once every "web" has finished, the name means the newest.
	if _, err := s.RequestStop(ctx, web.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ResolveTask(ctx, "web"); err != nil || got != web.ID {
		t.Errorf(`"web", all finished = %s, %v; want the newest, %s`, got, err, web.ID)
	}
}

func TestStore_CreateTask_LiveNameTakenNamesTheTask(t *testing.T) {
	s, ctx := newStore(t)
	web := createSpec(t, s, queue.TaskSpec{Name: "web"})
	_, err := s.CreateTask(ctx, uuid.Nil, queue.TaskSpec{Name: "web", Image: "workload:test", RestartPolicy: queue.RestartNever})
	if !errors.Is(err, queue.ErrConflict) || !strings.Contains(err.Error(), web.ID.String()) || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("a second live web: %v, want a conflict naming %s (pending)", err, web.ID)
	}
	// A retried create of that task is not a name conflict.
	stored := getTask(t, s, web.ID)
	again, created, err := s.SubmitTask(ctx, web.ID, stored.TaskSpec, CreateOpts{})
	if err != nil || created || again.ID != web.ID {
		t.Fatalf("the same create again: %s created=%v %v", again.ID, created, err)
	}
}

func TestStore_ResolveJob_ByNameIDStartOrEnd(t *testing.T) {
	s, ctx := newStore(t)
	web, _ := submit(t, s, "name: web\ntype: batch\ntask: {image: busybox}")
	api, _ := submit(t, s, "name: api\ntype: batch\ntask: {image: busybox}")
	full := web.ID.String()
	for ref, want := range map[string]string{
		"web": "web", full: "web", full[:23]: "web", queue.ShortID(api.ID): "api",
		"new-job": "new-job", // no such job: the name as it is, for the caller to find or not
	} {
		if got, err := s.ResolveJob(ctx, ref); err != nil || got != want {
			t.Errorf("ResolveJob(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	if _, err := s.ResolveJob(ctx, full[:4]); !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "2 jobs") {
		t.Errorf("an id start of both jobs: %v, want invalid input listing them", err)
	}
}

// sql/00030 builds the index of live names on a cluster that had live
// duplicates: the newest keeps the name, older ones get their short id.
func TestMigration00030_RenamesOlderLiveDuplicates(t *testing.T) {
	s, ctx := newStore(t)
	exec(t, s, `DROP INDEX tasks_live_name_key; DROP INDEX tasks_name_idx`)
	older := createSpec(t, s, queue.TaskSpec{Name: "web"})
	newer := createSpec(t, s, queue.TaskSpec{Name: "web"})
	done := createSpec(t, s, queue.TaskSpec{Name: "web"})
	if _, err := s.RequestStop(ctx, done.ID, "test"); err != nil {
		t.Fatal(err)
	}
	b, err := orchsql.Migrations.ReadFile("00030_task_names.sql")
	if err != nil {
		t.Fatal(err)
	}
	up, _, _ := strings.Cut(string(b), "-- +goose Down")
	exec(t, s, up)
	if got := getTask(t, s, older.ID).Name; got != "web-"+queue.ShortID(older.ID) {
		t.Errorf("the older live web is named %q, want web-<short id>", got)
	}
	if got := getTask(t, s, newer.ID).Name; got != "web" {
		t.Errorf("the newest live web is named %q, want web", got)
	}
	if got := getTask(t, s, done.ID).Name; got != "web" {
		t.Errorf("a finished web is named %q, want web (history keeps names)", got)
	}
}

// A task created without a name is named task-<short id> and is left out of
// the name indexes (sql/00055), yet its name is still found and still
// belongs to it alone while it is live.
func TestStore_GeneratedNames_FoundAndTakenWithoutTheNameIndexes(t *testing.T) {
	s, ctx := newStore(t)
	unnamed := createSpec(t, s, queue.TaskSpec{})
	name := "task-" + queue.ShortID(unnamed.ID)
	if unnamed.Name != name {
		t.Fatalf("an unnamed task is named %q, want %q", unnamed.Name, name)
	}
	if got, err := s.ResolveTask(ctx, name); err != nil || got != unnamed.ID {
		t.Errorf("ResolveTask(%q) = %s, %v; want %s", name, got, err, unnamed.ID)
	}
	// Given on purpose to another task, as a name alone or within a batch
	// with the unnamed task, it is taken while the unnamed task is live.
	spec := func(name string) queue.TaskSpec {
		sp := queue.TaskSpec{Name: name, Image: "alpine"}
		sp.Normalize()
		return sp
	}
	_, err := s.CreateTask(ctx, uuid.Nil, spec(name))
	if !errors.Is(err, queue.ErrConflict) || !strings.Contains(err.Error(), unnamed.ID.String()) {
		t.Errorf("a live generated name given again: %v, want a conflict naming %s", err, unnamed.ID)
	}
	fresh := uuid.Must(uuid.NewV7())
	_, err = s.CreateTasks(ctx, []NewTask{{ID: fresh, Spec: spec("")},
		{Spec: spec("task-" + queue.ShortID(fresh))}}, CreateOpts{})
	var item *queue.ItemError
	if !errors.Is(err, queue.ErrConflict) || !errors.As(err, &item) || item.Index != 1 {
		t.Errorf("a batch giving a generated name of its own unnamed task again: %v, want a conflict of task [1]", err)
	}
	if _, err := s.RequestStop(ctx, unnamed.ID, "test"); err != nil {
		t.Fatal(err)
	}
	named := createSpec(t, s, queue.TaskSpec{Name: name}) // free again
	if got, err := s.ResolveTask(ctx, name); err != nil || got != named.ID {
		t.Errorf("ResolveTask(%q), the unnamed one finished = %s, %v; want the live %s", name, got, err, named.ID)
	}
	if _, err := s.RequestStop(ctx, named.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ResolveTask(ctx, name); err != nil || got != named.ID {
		t.Errorf("ResolveTask(%q), both finished = %s, %v; want the newest, %s", name, got, err, named.ID)
	}
}
