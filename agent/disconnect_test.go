package agent

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

// cutOffRig starts the agent of node a with its database connections
// through a proxy the test can cut, and runs two tasks on it: one that asks
// to be stopped after 1 s without the database, and one that does not.
func cutOffRig(c *simCluster, rt Runtime) (proxy *pgtest.Proxy, a *simAgent, fenced, plain queue.Task) {
	c.t.Helper()
	proxy, viaProxy := pgtest.NewProxy(c.t, c.url)
	store, err := postgres.Open(c.ctx, viaProxy)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(store.Close)
	a = c.startWith("a", rt, store)
	fenced = c.create(queue.TaskSpec{Name: "singleton", StopAfterDisconnect: queue.Duration(time.Second)})
	plain = c.create(queue.TaskSpec{Name: "web"})
	c.waitState(fenced.ID, 10*time.Second, queue.Running)
	c.waitState(plain.ID, 10*time.Second, queue.Running)
	return proxy, a, fenced, plain
}

// A node is cut off from the database and the cluster moves its tasks. The
// task that set stop_after_disconnect is stopped by its agent before it is
// moved, so it never runs on two nodes; the one that did not runs on until
// its agent is back in touch and removes it.
func TestAgent_StopAfterDisconnect_CutOffNodeStopsTheTaskBeforeItMoves(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{} // one engine for both nodes: a container's labels say whose it is
	proxy, a, fenced, plain := cutOffRig(c, rt)
	c.start("b", rt)

	// Watch for the same task running on two nodes, from the cut to the end.
	stopWatching := watchTwice(func() int {
		cs, err := rt.List(c.ctx, map[string]string{LabelTask: fenced.ID.String()})
		live := 0
		for _, ct := range cs {
			if ct.Running {
				live++
			}
		}
		if err != nil {
			return 0
		}
		return live
	})
	proxy.Cut()
	c.eventually(10*time.Second, "the cut-off agent to stop the singleton", func() bool {
		return running(t, rt, fenced.ID)[a.Node().ID.String()] == 0
	})
	// Not before its stop_after_disconnect, counted from the last heartbeat
	// that went through as the agent heard it (under load that may be well
	// before the cut; and a beat whose answer the cut lost moved the node's
	// last_heartbeat, though the agent never heard back).
	if silent := a.outOfTouch(); silent < time.Second {
		t.Errorf("stopped %s after the last heartbeat the agent heard back about; it asked for 1s of silence first", silent)
	}
	if r := running(t, rt, plain.ID); r[a.Node().ID.String()] != 1 {
		t.Errorf("the task without stop_after_disconnect was stopped too: %v", r)
	}

	// The cluster declares a down and moves both tasks to b.
	c.declareDown(a, 2)
	c.eventually(10*time.Second, "both tasks to run on b", func() bool {
		return c.task(fenced.ID).State == queue.Running && c.task(plain.ID).State == queue.Running
	})
	if r := running(t, rt, plain.ID); len(r) != 2 {
		t.Errorf("while a is cut off, the plain task runs on %v, want a and b (the default: only a's agent can stop it)", r)
	}

	proxy.Restore()
	c.eventually(15*time.Second, "a's agent to remove what was moved away", func() bool {
		return len(running(t, rt, plain.ID)) == 1 && len(running(t, rt, fenced.ID)) == 1
	})
	for _, id := range []queue.Task{fenced, plain} {
		tk := c.task(id.ID)
		if tk.NodeName != "b" || tk.Attempt != 2 || tk.Restarts != 0 {
			t.Errorf("%s: on %s, attempt %d, %d restarts; want b, attempt 2, no restart", tk.Name, tk.NodeName, tk.Attempt, tk.Restarts)
		}
	}
	if n := stopWatching(); n > 0 {
		t.Errorf("the singleton ran on two nodes at once (%d samples)", n)
	}
}

// A short outage: the node is not declared down, and the task that stopped
// goes back to the queue with the reason, then runs again; the others ran on.
func TestAgent_StopAfterDisconnect_AfterAShortOutageTheTaskRunsAgain(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{}
	proxy, _, fenced, plain := cutOffRig(c, rt)

	proxy.Cut()
	c.eventually(10*time.Second, "the singleton to stop", func() bool { return len(running(t, rt, fenced.ID)) == 0 })
	proxy.Restore()
	c.eventually(15*time.Second, "the singleton to run again", func() bool {
		tk := c.task(fenced.ID)
		return tk.State == queue.Running && tk.Attempt == 2 && len(running(t, rt, fenced.ID)) == 1
	})
	var why string
	for _, e := range events(t, c.store, fenced.ID) {
		if e.Attempt == 1 && e.From == queue.Running {
			why = e.Reason
		}
	}
	if !strings.HasPrefix(why, "moved: stopped because its agent lost touch with the database for ") {
		t.Errorf("attempt 1 ended with %q, want the disconnect named", why)
	}
	if tk := c.task(fenced.ID); tk.Restarts != 0 {
		t.Errorf("the stop counted as %d restarts", tk.Restarts)
	}
	if tk := c.task(plain.ID); tk.State != queue.Running || tk.Attempt != 1 {
		t.Errorf("the plain task is %s at attempt %d, want running at attempt 1", tk.State, tk.Attempt)
	}
}

// A silent partition: the proxy keeps the agent's connections open and
// forwards nothing, so no call fails, it only never answers. The task that
// asked to be stopped after 2 s without the database is stopped within
// 2 s + one heartbeat interval of the cut — the fence has a timer of its
// own and the heartbeat a deadline — and it never runs on two nodes while
// the cluster moves it.
func TestAgent_StopAfterDisconnect_SilentPartitionStopsTheTaskOnTime(t *testing.T) {
	t.Parallel()
	c := newSimCluster(t)
	rt := &MemRuntime{}
	proxy, viaProxy := pgtest.NewProxy(c.t, c.url)
	store, err := postgres.Open(c.ctx, viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	a := c.startWith("a", rt, store)
	const after = 2 * time.Second
	fenced := c.create(queue.TaskSpec{Name: "singleton", StopAfterDisconnect: queue.Duration(after)})
	c.waitState(fenced.ID, 10*time.Second, queue.Running)
	c.start("b", rt)

	stopWatching := watchTwice(func() int { return len(running(t, rt, fenced.ID)) })

	cut := time.Now()
	proxy.Blackhole()
	c.eventually(10*time.Second, "the partitioned agent to stop the singleton", func() bool {
		return running(t, rt, fenced.ID)[a.Node().ID.String()] == 0
	})
	took := time.Since(cut)
	// One heartbeat interval of the rig (100 ms), and as much again for
	// the scheduler of a loaded test machine.
	if bound := after + 2*100*time.Millisecond; took > bound {
		t.Errorf("the singleton was stopped %s after the partition began, want within %s", took.Round(time.Millisecond), bound)
	}
	t.Logf("stopped %s after the partition began (stop_after_disconnect %s)", took.Round(time.Millisecond), after)

	c.declareDown(a, 1)
	c.eventually(10*time.Second, "the singleton to run on b", func() bool {
		tk := c.task(fenced.ID)
		return tk.State == queue.Running && tk.NodeName == "b"
	})
	proxy.Restore()
	c.eventually(15*time.Second, "a single container of the singleton", func() bool {
		return len(running(t, rt, fenced.ID)) == 1
	})
	if n := stopWatching(); n > 0 {
		t.Errorf("the singleton ran on two nodes at once (%d samples)", n)
	}
}

// watchTwice looks every 5 ms, until the stop it returns is called, whether
// a task runs twice: live says how many of its containers (or nodes) run
// it. stop returns how many looks found more than one.
func watchTwice(live func() int) (stop func() int32) {
	var twice atomic.Int32
	stopWatching, watching := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watching)
		for {
			if live() > 1 {
				twice.Add(1)
			}
			select {
			case <-stopWatching:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int32 {
		close(stopWatching)
		<-watching
		return twice.Load()
	}
}
