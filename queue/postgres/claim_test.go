package postgres

import (
	"context"
	"testing"

	"github.com/orchd/orch/queue"
)

// A claim skips a task another transaction holds, and says it left one.
func TestClaim_SkipsAHeldTaskAndCountsIt(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	n := mustNode(t, s, "n1", roomyNode)
	held := mustTask(t, s, queue.Resources{CPUMillis: 100})
	free := mustTask(t, s, queue.Resources{CPUMillis: 100})
	if res := pass(t, s, onNode(n.ID)); res.Placed != 2 {
		t.Fatalf("placed %d, want 2", res.Placed)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM tasks WHERE id = $1 FOR SHARE`, held.ID); err != nil {
		t.Fatal(err)
	}

	c, err := s.Claim(ctx, n.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tasks) != 1 || c.Tasks[0].ID != free.ID || c.Left != 1 {
		t.Fatalf("claim with one task held: %d tasks, left %d; want the free one, and 1 left", len(c.Tasks), c.Left)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(ctx, n.ID, 10); err != nil || len(c.Tasks) != 1 || c.Tasks[0].ID != held.ID || c.Left != 0 {
		t.Fatalf("claim once released: %+v, %v; want the other task and none left", c, err)
	}
}
