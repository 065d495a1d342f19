package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// processes loads a coordinator and an agent that run as processes of the
// orch binary (the agent with --runtime memory, so that no Docker is
// needed) and reads their peak RSS. The agent first takes --process-held
// containers that keep running (250 by default: a busy node, well over
// Kubernetes' default of 110 pods per node), then --process-tasks short
// tasks stream through it, then the held ones are stopped. Its memory grows
// with the containers it holds, so the figure is for that many. The
// coordinator process lives on for the latency and docker phases; its peak
// is read again when it stops.
func (b *bench) processes(ctx context.Context) error {
	coord, client, err := b.coordinatorClient(ctx)
	if err != nil {
		return err
	}
	ag, node, err := b.startAgent(ctx, "memory", "proc")
	if err != nil {
		return err
	}
	defer ag.stop()
	live0, err := b.store.LiveTasks(ctx, math.MaxInt32)
	if err != nil {
		return err
	}
	// 1m of CPU each: even a one-core machine's agent takes 1,000 at once.
	held, _, err := createAPI(ctx, client, b.opts.ProcessHeld, 8, simRequest("1m", "-sleep", "forever"))
	if err != nil {
		return err
	}
	if err := b.waitRunning(ctx, held, time.Minute+time.Duration(len(held))*20*time.Millisecond); err != nil {
		return err
	}
	m := b.opts.ProcessTasks
	ids, _, err := createAPI(ctx, client, m, 8, simRequest("1m", "-exit", "0"))
	if err != nil {
		return err
	}
	if err := b.waitFinished(ctx, ids, live0+len(held), phaseTimeout(m)); err != nil {
		return err
	}
	first, last, _, err := b.store.TaskSpan(ctx, ids)
	if err != nil {
		return err
	}
	agentRSS, err := ag.peakRSS()
	if err != nil {
		return err
	}
	coordRSS, err := coord.peakRSS()
	if err != nil {
		return err
	}
	for _, id := range held {
		if _, err := client.DeleteTask(ctx, id.String()); err != nil {
			return fmt.Errorf("stopping held task %s: %w", id, err)
		}
	}
	if err := b.waitFinished(ctx, held, live0, phaseTimeout(len(held))); err != nil {
		return err
	}
	ag.stop()
	if _, err := b.store.SetCordoned(ctx, node.String(), true); err != nil {
		return err
	}
	b.report.Processes = &ProcessesResult{
		Held: len(held), Tasks: m, TasksPerSec: perSecond(m, last.Sub(first)),
		AgentPeakRSS: agentRSS, CoordinatorPeakRSS: coordRSS,
	}
	return nil
}

// waitRunning waits until every one of ids runs, for at most timeout.
func (b *bench) waitRunning(ctx context.Context, ids []uuid.UUID, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		lat, err := b.store.StateLatencies(ctx, ids, queue.Running)
		if err != nil {
			return err
		}
		if len(lat) == len(ids) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d tasks not running after %s", len(ids)-len(lat), len(ids), timeout)
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// startAgent starts an agent process with the given runtime, for node
// bench-<run>-<suffix>, and waits until it has registered the node.
func (b *bench) startAgent(ctx context.Context, runtime, suffix string) (*child, uuid.UUID, error) {
	name := fmt.Sprintf("bench-%s-%s", b.id, suffix)
	p, err := b.startProc("agent-"+runtime, "agent", "--runtime", runtime, "--database-url", b.url, "--name", name)
	if err != nil {
		return nil, uuid.Nil, err
	}
	node, err := b.waitNode(ctx, p, name)
	if err != nil {
		p.stop()
		return nil, uuid.Nil, err
	}
	return p, node, nil
}

// waitNode waits up to 30 s for an agent process to register its node.
func (b *bench) waitNode(ctx context.Context, p *child, name string) (uuid.UUID, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := b.store.GetNode(ctx, name)
		if err == nil {
			return n.ID, nil
		}
		if !errors.Is(err, queue.ErrNotFound) {
			return uuid.Nil, err
		}
		if p.exited() {
			return uuid.Nil, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		if time.Now().After(deadline) {
			return uuid.Nil, fmt.Errorf("%s did not register node %s within 30 s\n%s", p.name, name, p.tail())
		}
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return uuid.Nil, ctx.Err()
		}
	}
}
