package postgres

import (
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// A claim skips a task another transaction holds, and says it left one.
func TestClaim_SkipsAHeldTaskAndCountsIt(t *testing.T) {
	s, ctx := newStore(t)
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
	if len(c.Tasks) != 1 || c.Tasks[0].ID != free.ID || !c.Left {
		t.Fatalf("claim with one task held: %d tasks, left %v; want the free one, and one left", len(c.Tasks), c.Left)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(ctx, n.ID, 10); err != nil || len(c.Tasks) != 1 || c.Tasks[0].ID != held.ID || c.Left {
		t.Fatalf("claim once released: %+v, %v; want the other task and none left", c, err)
	}
}

func TestStore_Claim_ConcurrentClaimersNeverShareATask(t *testing.T) {
	s, ctx := newStore(t)
	node := mustNode(t, s, "n1", queue.Resources{CPUMillis: 1_000_000, MemoryBytes: 1 << 40, DiskBytes: 1 << 40})
	const n = 200
	for i := 0; i < n; i++ {
		mustTask(t, s, queue.Resources{CPUMillis: 1})
	}
	for pass(t, s, firstFit).Considered > 0 {
	}
	var mu sync.Mutex
	seen := map[uuid.UUID]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				claim, err := s.Claim(ctx, node.ID, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(claim.Tasks) == 0 {
					return
				}
				mu.Lock()
				for _, tk := range claim.Tasks {
					seen[tk.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct tasks, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("task %s claimed %d times", id, c)
		}
	}
}
