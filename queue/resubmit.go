package queue

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
)

// SameSpec reports whether spec, a normalized spec sent again with the id of
// the stored task t, asks for what t was created with. A client that is not
// sure its create went through (the answer was lost to a crash or a
// failover) sends it again with the same id: the same spec then means "the
// same task", and anything else is a conflict. The name orch chose for an
// unnamed task matches no name, and secrets compare by name only, as the
// store keeps their values sealed.
func (t *Task) SameSpec(spec TaskSpec) bool {
	stored := t.TaskSpec
	if spec.Name == "" && stored.Name == "task-"+ShortID(t.ID) {
		spec.Name = stored.Name
	}
	keys := slices.Collect(maps.Keys(spec.Secrets))
	sort.Strings(keys)
	have := slices.Clone(t.SecretKeys)
	sort.Strings(have)
	if !slices.Equal(keys, have) {
		return false
	}
	spec.Secrets, stored.Secrets = nil, nil
	a, errA := json.Marshal(spec)
	b, errB := json.Marshal(stored)
	return errA == nil && errB == nil && string(a) == string(b)
}
