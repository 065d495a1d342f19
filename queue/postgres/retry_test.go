package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/orchd/orch/queue/postgres/pgtest"
)

func TestStore_ReadRetriedWhileDatabaseAway_AndLastAwaySaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	proxy, via := pgtest.NewProxy(t, newURL(t))
	s := openStore(t, via)
	mustNode(t, s, "n1", roomyNode)
	if !s.LastAway().IsZero() {
		t.Fatalf("LastAway before any outage: %v", s.LastAway())
	}

	cut := time.Now()
	proxy.Cut()
	back := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { proxy.Restore(); close(back) })
	nodes, err := s.ListNodes(ctx)
	<-back
	if err != nil || len(nodes) != 1 {
		t.Fatalf("listing nodes across a half-second outage: %v, %v", nodes, err)
	}
	if away := s.LastAway(); away.Before(cut) {
		t.Errorf("LastAway = %v, want after the cut at %v: the retried call hid the outage", away, cut)
	}
}
