package agent

import (
	"context"
	"time"
)

// orDefault sets an option left zero (or negative) to its default.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// repeat calls fn after first, and again after each delay fn returns, until
// ctx ends: the shape of the agent's periodic loops.
func repeat(ctx context.Context, first time.Duration, fn func() (next time.Duration)) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(fn())
	}
}
