package scheduler

import (
	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// homes is where named volumes live during one pass: the snapshot's, plus
// the new ones the pass has put on a node, so that two tasks of one new
// volume in a batch land together.
type homes map[string]queue.VolumeHome

func volumeHomes(snap map[string]queue.VolumeHome) homes {
	h := make(homes, len(snap))
	for k, v := range snap {
		h[k] = v
	}
	return h
}

// candidates narrows cands to the node where t's named volumes live: all of
// them, for a task whose volumes are all new. A task whose volumes live on
// different nodes, or on a node that is gone, or one being deleted, fits
// nowhere, and the reason says why. note prefixes the reason when the one
// node left does not fit.
func (h homes) candidates(t *queue.Task, cands []*candidate) (pool []*candidate, why, note string) {
	var home uuid.UUID
	var first string
	for _, name := range t.NamedVolumes() {
		v, ok := h[name]
		switch {
		case !ok:
			continue
		case v.Deleting:
			return nil, "volume " + name + " is being deleted", ""
		case home == uuid.Nil:
			home, first = v.NodeID, name
		case home != v.NodeID:
			return nil, "volumes " + first + " and " + name + " live on different nodes", ""
		}
	}
	if home == uuid.Nil {
		return cands, "", ""
	}
	for _, c := range cands {
		if c.node.ID == home {
			return []*candidate{c}, "", "volume " + first + " lives on node " + c.node.Name + ": "
		}
	}
	return nil, "volume " + first + " lives on node " + home.String() + ", which is not registered", ""
}

// settle records that t's new volumes now live on c's node.
func (h homes) settle(t *queue.Task, c *candidate) {
	for _, name := range t.NamedVolumes() {
		if _, ok := h[name]; !ok {
			h[name] = queue.VolumeHome{NodeID: c.node.ID}
		}
	}
}
