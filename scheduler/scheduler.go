package scheduler

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// Scheduler plans placements with one default strategy; a task may name
// another.
type Scheduler struct {
	strategy strategy
}

// New returns a scheduler using the named strategy ("" means the default).
func New(strategy string) (*Scheduler, error) {
	st, err := lookup(strategy)
	if err != nil {
		return nil, err
	}
	return &Scheduler{strategy: st}, nil
}

// Strategy names the scheduler's default strategy.
func (s *Scheduler) Strategy() string { return s.strategy.name() }

// portKey is a host port with its protocol, as one comparable value.
type portKey struct {
	port  int
	proto string
}

// candidate is a node as one pass sees it, with what the pass itself has
// already placed on it, so a batch never overfills a node or publishes one
// host port twice.
type candidate struct {
	node  *queue.Node
	ok    bool // ready and not cordoned
	free  queue.Resources
	ports map[portKey]bool // host ports held by live tasks and by this pass

	// What the strategies read, per dimension (see strategy.go, epvm.go).
	inv       [nDims]float64 // 1/capacity, 0 where the node offers none
	dims      int            // dimensions the node offers
	usedShare float64        // Σ (capacity − free)/capacity
	reserved  [nDims]float64 // reserved when the snapshot was taken
	measured  [nDims]float64 // the agent's latest measurement
	placed    [nDims]float64 // placed by this pass
	base      [nDims]float64 // epvm: L^u
}

func newCandidate(n *queue.Node, used []queue.Port) *candidate {
	c := &candidate{node: n, ok: n.State == queue.NodeReady && !n.Cordoned, free: n.Free(),
		reserved: vec(n.Reserved), measured: measured(n)}
	if len(used) > 0 {
		c.ports = make(map[portKey]bool, len(used))
		for _, p := range used {
			c.ports[portKey{p.HostPort, proto(p)}] = true
		}
	}
	for d, v := range vec(n.Capacity) {
		if v > 0 {
			c.inv[d] = 1 / v
			c.dims++
		}
	}
	c.refresh()
	return c
}

// refresh recomputes what depends on free and placed.
func (c *candidate) refresh() {
	capacity, free := vec(c.node.Capacity), vec(c.free)
	c.usedShare = 0
	for d := 0; d < nDims; d++ {
		c.usedShare += (capacity[d] - free[d]) * c.inv[d]
	}
	c.epvmBase()
}

// Plan places tasks in order onto the snapshot's nodes. Each placement is
// subtracted from its node's free capacity (and takes its host ports) before
// the next task is considered, so a plan never overfills a node on its own;
// the store's guarded commit catches what other replicas did meanwhile.
func (s *Scheduler) Plan(tasks []queue.Task, snap queue.Snapshot) queue.Plan {
	cands := make([]*candidate, len(snap.Nodes))
	for i := range snap.Nodes {
		cands[i] = newCandidate(&snap.Nodes[i], snap.Ports[snap.Nodes[i].ID])
	}
	// Round-robin walks the nodes in id order; sorting here means the plan
	// does not depend on the order the snapshot came in.
	sort.Slice(cands, func(i, j int) bool { return bytes.Compare(cands[i].node.ID[:], cands[j].node.ID[:]) < 0 })
	rr := &ring{cursor: snap.RoundRobin}

	plan := queue.Plan{Unplaced: map[uuid.UUID]string{}}
	homes := volumeHomes(snap.Volumes)
	for i := range tasks {
		t := &tasks[i]
		pool, why, note := homes.candidates(t, cands)
		if why != "" {
			plan.Unplaced[t.ID] = why
			continue
		}
		st := s.strategy
		if t.Strategy != "" {
			if named, err := lookup(t.Strategy); err == nil {
				st = named
			}
		}
		var best *candidate
		if st.name() == queue.StrategyRoundRobin {
			best, why = rr.pick(t, pool)
		} else {
			best, why = pickBest(st, t, pool)
		}
		if best == nil {
			plan.Unplaced[t.ID] = note + why
			continue
		}
		best.take(t)
		homes.settle(t, best)
		plan.Placements = append(plan.Placements, queue.Placement{TaskID: t.ID, NodeID: best.node.ID})
	}
	if rr.moved {
		id := rr.cursor
		plan.RoundRobin = &id
	}
	return plan
}

// take books t on c for the rest of the pass.
func (c *candidate) take(t *queue.Task) {
	c.free = c.free.Sub(t.Resources)
	req := vec(t.Resources)
	for d := 0; d < nDims; d++ {
		c.placed[d] += req[d]
	}
	c.refresh()
	for _, p := range t.Ports {
		if p.HostPort == 0 {
			continue
		}
		if c.ports == nil {
			c.ports = map[portKey]bool{}
		}
		c.ports[portKey{p.HostPort, proto(p)}] = true
	}
}

// pickBest returns the feasible candidate that st scores highest (ties go
// to the node whose name sorts first, so plans are reproducible), or nil and
// the reason none fits.
func pickBest(st strategy, t *queue.Task, cands []*candidate) (*candidate, string) {
	var best *candidate
	var bestScore float64
	var rej rejections
	a := newAsk(t.Resources)
	for _, c := range cands {
		if r, detail := reject(t, c); r != fits {
			rej.add(r, detail, t)
			continue
		}
		sc := st.score(&a, c)
		if best == nil || sc > bestScore || (sc == bestScore && c.node.Name < best.node.Name) {
			best, bestScore = c, sc
		}
	}
	if best != nil {
		return best, ""
	}
	return nil, rej.explain(len(cands), t)
}

// ring is the round-robin walk: each task goes to the first node that fits
// it after the one round-robin chose last, wrapping around. The cursor comes
// from the database and goes back into it, so every replica continues the
// same walk.
type ring struct {
	cursor uuid.UUID
	moved  bool
}

func (r *ring) pick(t *queue.Task, cands []*candidate) (*candidate, string) {
	if len(cands) == 0 {
		return nil, rejections{}.explain(0, t)
	}
	start := sort.Search(len(cands), func(i int) bool { return bytes.Compare(cands[i].node.ID[:], r.cursor[:]) > 0 })
	var rej rejections
	for k := 0; k < len(cands); k++ {
		c := cands[(start+k)%len(cands)]
		if why, detail := reject(t, c); why != fits {
			rej.add(why, detail, t)
			continue
		}
		r.cursor, r.moved = c.node.ID, true
		return c, ""
	}
	return nil, rej.explain(len(cands), t)
}

// reason is why a node cannot take a task; the order is the order in which
// the filters run, and so which one a node is counted under.
type reason int

const (
	fits reason = iota
	isDown
	isUnhealthy // its agent is alive but its container engine fails
	isCordoned
	noPrivileges // the task needs privileges the node's agent does not allow
	noHostMounts // the task binds host paths, which the node's agent does not allow
	noMatch      // a label constraint fails; detail is its index
	noCPU
	noMemory
	noDisk
	portTaken // detail is the index of the task's port
	nReasons
)

// reject says why c cannot take t (fits when it can), with the index of the
// failing constraint or port.
func reject(t *queue.Task, c *candidate) (reason, int) {
	if !c.ok {
		switch c.node.State {
		case queue.NodeReady:
		case queue.NodeUnhealthy:
			return isUnhealthy, 0
		default:
			return isDown, 0
		}
		return isCordoned, 0
	}
	if t.NeedsPrivileges() && c.node.Labels[queue.LabelAllowPrivileged] != "true" {
		return noPrivileges, 0
	}
	if t.HostMounts() && c.node.Labels[queue.LabelAllowHostMounts] != "true" {
		return noHostMounts, 0
	}
	for i, k := range t.Constraints {
		if !k.MatchesNode(c.node) {
			return noMatch, i
		}
	}
	r := t.Resources
	switch {
	case r.CPUMillis > c.free.CPUMillis:
		return noCPU, 0
	case r.MemoryBytes > c.free.MemoryBytes:
		return noMemory, 0
	case r.DiskBytes > c.free.DiskBytes:
		return noDisk, 0
	}
	if c.ports != nil {
		for i, p := range t.Ports {
			if p.HostPort != 0 && c.ports[portKey{p.HostPort, proto(p)}] {
				return portTaken, i
			}
		}
	}
	return fits, 0
}

// rejections counts, for one task, how many nodes each filter turned away.
type rejections struct {
	n           [nReasons]int
	constraints map[int]int
	ports       map[int]int
}

func (r *rejections) add(why reason, detail int, t *queue.Task) {
	r.n[why]++
	switch why {
	case noMatch:
		if r.constraints == nil {
			r.constraints = map[int]int{}
		}
		r.constraints[detail]++
	case portTaken:
		if r.ports == nil {
			r.ports = map[int]int{}
		}
		r.ports[detail]++
	}
}

// explain renders the counts as e.g. "no node fits: 3 short of memory (needs
// 4GiB), 1 cordoned", the most common reason first.
func (r rejections) explain(total int, t *queue.Task) string {
	if total == 0 {
		return "no node fits: no nodes are registered"
	}
	type part struct {
		n    int
		text string
	}
	var parts []part
	res := t.Resources
	for why, text := range map[reason]string{
		isDown:       "down",
		isUnhealthy:  "unhealthy",
		isCordoned:   "cordoned",
		noPrivileges: "not allowing privileged containers (start its agent with --allow-privileged)",
		noHostMounts: "not allowing host mounts (start its agent with --allow-host-mounts)",
		noCPU:        fmt.Sprintf("short of CPU (needs %s cores)", queue.FormatCPU(res.CPUMillis)),
		noMemory:     fmt.Sprintf("short of memory (needs %s)", queue.FormatBytes(res.MemoryBytes)),
		noDisk:       fmt.Sprintf("short of disk (needs %s)", queue.FormatBytes(res.DiskBytes)),
	} {
		if r.n[why] > 0 {
			parts = append(parts, part{r.n[why], text})
		}
	}
	for i, n := range r.constraints {
		parts = append(parts, part{n, "not matching " + t.Constraints[i].String()})
	}
	for i, n := range r.ports {
		p := t.Ports[i]
		parts = append(parts, part{n, "with host port " + strconv.Itoa(p.HostPort) + "/" + proto(p) + " taken"})
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].n != parts[j].n {
			return parts[i].n > parts[j].n
		}
		return parts[i].text < parts[j].text
	})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = strconv.Itoa(p.n) + " " + p.text
	}
	return "no node fits: " + strings.Join(out, ", ")
}

// proto is a port's protocol with the default filled in.
func proto(p queue.Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}
