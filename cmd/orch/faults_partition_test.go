package main

import (
	"fmt"
	"time"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// faultFenced tasks set stop_after_disconnect; it is well under the suite's
// node-down timeout, so that their containers are gone before the cluster
// can have started them elsewhere.
const (
	faultFenced     = 6
	faultFencedStop = "1s"
)

// partitionAgent: the agent's way to the database is cut (every connection
// through its proxy closed, new ones refused) until its node has been
// declared down and its tasks moved, then restored. The tasks on it that set
// stop_after_disconnect are stopped by their agent before the cluster starts
// them elsewhere, so they never run on two nodes; the others run on beside
// their replacements until the agent is back in touch and removes them.
func (s *faultSuite) partitionAgent(name string) {
	s.t.Helper()
	// Place the fenced tasks on this node: the others are cordoned
	// meanwhile.
	s.cordonAllBut(name, true)
	placed := time.Now()
	s.submitWith(faultFenced, "fenced", queue.Running, func(r *coordinator.TaskRequest) {
		r.StopAfterDisconnect = faultFencedStop
	}, "-sleep", "forever")
	s.await("the fenced tasks to run", placed, time.Minute, func(o observation) bool { return o.recovered() })
	s.cordonAllBut(name, false)
	if n := s.fencedOn(name); n != faultFenced {
		s.t.Fatalf("%d of %d fenced tasks run on %s, want all", n, faultFenced, name)
	}

	s.snapshot()
	from := time.Now()
	s.dbProxy.Cut()
	movedAfter := s.awaitNode(name, "to lose its tasks", from, func(n queue.Node) bool {
		return n.State == queue.NodeDown && n.LiveTasks == 0
	})
	// The link stays cut until the moved tasks run elsewhere: that is when
	// a task that did not fence itself runs twice.
	runningAfter := s.await("the moved tasks to run elsewhere", from, faultNodeDown+10*time.Second+faultSlack, func(o observation) bool {
		return o.err == nil && o.settled == o.tasks && o.unsettled == 0
	})
	twice, fencedTwice := s.peakTwice, s.peakFencedDup
	restored := time.Now()
	s.dbProxy.Restore()
	cleaned := s.await("the cut-off agent to remove what moved", restored, faultSlack, func(o observation) bool { return o.recovered() })
	s.report("agent cut off from the database", from, runningAfter, fmt.Sprintf(
		"tasks moved after %.2fs; during the cut %d tasks ran twice, %d of them fenced (stop_after_disconnect %s); link restored then, stale containers gone %.2fs later",
		movedAfter.Seconds(), twice, fencedTwice, faultFencedStop, cleaned.Seconds()))
	if fencedTwice > 0 {
		s.t.Errorf("agent cut off from the database: %d tasks that set stop_after_disconnect %s ran on two nodes at once", fencedTwice, faultFencedStop)
	}
	if n := s.fencedOn(name); n > 0 {
		s.t.Errorf("agent cut off from the database: %d fenced tasks are still placed on %s", n, name)
	}
}

func (s *faultSuite) cordonAllBut(name string, cordoned bool) {
	s.t.Helper()
	for _, other := range s.agents {
		if other == name {
			continue
		}
		if _, err := s.c.store.SetCordoned(s.ctx, other, cordoned); err != nil {
			s.t.Fatalf("cordon %s = %v: %v", other, cordoned, err)
		}
	}
}

// fencedOn counts the fenced tasks the database places on the node.
func (s *faultSuite) fencedOn(name string) int {
	s.t.Helper()
	n, err := s.c.store.GetNode(s.ctx, name)
	if err != nil {
		s.t.Fatal(err)
	}
	tasks, err := s.c.store.ListTasks(s.ctx, postgres.TaskFilter{NodeID: &n.ID})
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	count := 0
	for _, t := range tasks {
		if s.fenced[t.ID] {
			count++
		}
	}
	return count
}
