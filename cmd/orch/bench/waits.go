package bench

import (
	"context"
	"sort"
	"sync"
	"time"
)

// WaitShare is the share of a phase's samples of busy backends that were
// waiting for one thing (or running on a CPU).
type WaitShare struct {
	Event   string  `json:"event"`
	Percent float64 `json:"percent"`
}

// PhaseWaits is what the database's busy backends were doing during a phase.
type PhaseWaits struct {
	Phase string `json:"phase"`
	// Busy is the mean number of active backends of the bench's database.
	Busy float64     `json:"mean_active_backends"`
	Top  []WaitShare `json:"top"`
}

// sampleWaits samples pg_stat_activity's wait events every 200 ms until the
// returned stop is called, which records the phase's profile in the report.
// It is how the bench says where a phase's database time goes: waiting for
// row locks, for WAL flushes, or on a CPU.
func (b *bench) sampleWaits(ctx context.Context, phase string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	counts := map[string]int{}
	samples := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ev, err := b.store.WaitEvents(ctx)
			if err != nil {
				continue
			}
			samples++
			for k, n := range ev {
				counts[k] += n
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		if samples == 0 {
			return
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		pw := PhaseWaits{Phase: phase, Busy: float64(total) / float64(samples)}
		for ev, n := range counts {
			pw.Top = append(pw.Top, WaitShare{Event: ev, Percent: 100 * float64(n) / float64(max(total, 1))})
		}
		sort.Slice(pw.Top, func(i, j int) bool { return pw.Top[i].Percent > pw.Top[j].Percent })
		if len(pw.Top) > 5 {
			pw.Top = pw.Top[:5]
		}
		b.report.Waits = append(b.report.Waits, pw)
	}
}
