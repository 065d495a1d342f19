package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// Waking agents that cannot LISTEN. An agent that reaches PostgreSQL
// through a transaction pooler (package queue/postgres, Pooler) hears of its
// work from the coordinators: it long-polls GET /nodes/{node}/wake, which
// answers as soon as the node has something to look at (work placed on it,
// a stop, a drain, tasks moved away) or after a while anyway. The answer is
// only a hint — a number that changed — and the agent then reads the tables
// as it would after a notification; the claim stays FOR UPDATE SKIP LOCKED
// in PostgreSQL. Every coordinator LISTENs on postgres.ChannelWake, which
// carries the node's id of every such wake-up, so an agent may wait on any
// of them; and agents still only dial out.
//
// The design keeps PostgreSQL's cost flat in the size of the fleet: a
// handful of listening backends (the coordinators) instead of one per agent,
// and no NOTIFY that wakes thousands of backends. The price is a hop through
// a coordinator (well under a millisecond on a LAN) and that agents must be
// told where the coordinators are (orch agent --coordinator).

// MaxWakeWait bounds how long GET /nodes/{node}/wake holds a request.
const MaxWakeWait = 55 * time.Second

// wakeHub is what each node's waiters wait on: a sequence number, bumped at
// every wake-up of the node, and a channel closed at the same time.
type wakeHub struct {
	mu    sync.Mutex
	nodes map[uuid.UUID]*nodeWake
}

type nodeWake struct {
	seq uint64
	ch  chan struct{}
}

func newWakeHub() *wakeHub { return &wakeHub{nodes: map[uuid.UUID]*nodeWake{}} }

// get returns node's entry, making it; the caller holds mu.
func (h *wakeHub) get(node uuid.UUID) *nodeWake {
	w := h.nodes[node]
	if w == nil {
		w = &nodeWake{ch: make(chan struct{})}
		h.nodes[node] = w
	}
	return w
}

// wake tells node's waiters.
func (h *wakeHub) wake(node uuid.UUID) {
	h.mu.Lock()
	w := h.get(node)
	w.seq++
	close(w.ch)
	w.ch = make(chan struct{})
	h.mu.Unlock()
}

// wakeAll tells every waiter: the LISTEN connection was down a while, and
// what it missed is unknown.
func (h *wakeHub) wakeAll() {
	h.mu.Lock()
	for _, w := range h.nodes {
		w.seq++
		close(w.ch)
		w.ch = make(chan struct{})
	}
	h.mu.Unlock()
}

// wait returns node's sequence number once it is past after, or after d,
// or when ctx ends.
func (h *wakeHub) wait(ctx context.Context, node uuid.UUID, after uint64, d time.Duration) uint64 {
	h.mu.Lock()
	w := h.get(node)
	seq, ch := w.seq, w.ch
	h.mu.Unlock()
	if seq != after {
		return seq
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.get(node).seq
}

// heard handles a notification of the coordinator's LISTEN connection.
func (c *Coordinator) heard(n postgres.Notification) {
	switch n.Channel {
	case postgres.ChannelWake:
		if id, err := uuid.Parse(n.Payload); err == nil {
			c.wakes.wake(id)
		}
	case postgres.ChannelPending:
		c.poke()
	case postgres.ChannelJobs:
		c.pokeJobs()
	case "": // back after a break: anything may have been missed
		c.wakes.wakeAll()
		c.poke()
		c.pokeJobs()
	}
}

// WakeAnswer is GET /nodes/{node}/wake's answer.
type WakeAnswer struct {
	// Seq changes whenever the node has something to look at. Send it back
	// as after= to wait for the next change.
	Seq uint64 `json:"seq"`
}

// nodeWake is GET /nodes/{node}/wake?after=SEQ&wait=DURATION: it answers
// once the node's sequence number is not after (at once, for an agent that
// just came), or after wait (default and most MaxWakeWait).
func (c *Coordinator) nodeWake(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("node"))
	if err != nil {
		c.writeError(w, r, queue.Invalid("node", fmt.Sprintf("%q is not a node id", r.PathValue("node")), "agents wait on their node's id"))
		return
	}
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			c.writeError(w, r, queue.Invalid("after", fmt.Sprintf("%q is not a sequence number", s), "send back the seq of the last answer"))
			return
		}
	}
	d := MaxWakeWait
	if s := q.Get("wait"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			c.writeError(w, r, queue.Invalid("wait", fmt.Sprintf("%q is not a duration", s), "e.g. wait=25s"))
			return
		}
		d = min(v, MaxWakeWait)
	}
	writeJSON(w, http.StatusOK, WakeAnswer{Seq: c.wakes.wait(r.Context(), id, after, d)})
}
