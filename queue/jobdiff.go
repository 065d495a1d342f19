package queue

import (
	"encoding/json"
	"fmt"
	"slices"
)

// DiffSpecs lists what changed from spec a to spec b, one line per field
// by its path: "task.image: busybox:1.36 → busybox:1.37", "+ task.env.MODE:
// prod", "- count: 3". Secrets are compared by name only.
func DiffSpecs(a, b JobSpec) []string {
	fa, fb := flatten(a), flatten(b)
	var out []string
	for _, k := range sortedKeys(fa, fb) {
		va, inA := fa[k]
		vb, inB := fb[k]
		switch {
		case inA && inB && va != vb:
			out = append(out, fmt.Sprintf("%s: %s → %s", k, va, vb))
		case inA && !inB:
			out = append(out, fmt.Sprintf("- %s: %s", k, va))
		case !inA && inB:
			out = append(out, fmt.Sprintf("+ %s: %s", k, vb))
		}
	}
	return out
}

// flatten maps every leaf of the spec's JSON to its path.
func flatten(s JobSpec) map[string]string {
	keys := s.SecretKeys()
	s = s.Stored()
	b, _ := json.Marshal(s)
	var tree any
	_ = json.Unmarshal(b, &tree)
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(joinPath(path, k), e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			j, _ := json.Marshal(x)
			out[path] = string(j)
		}
	}
	walk("", tree)
	for _, k := range keys {
		out["task.secrets."+k] = "(secret)"
	}
	return out
}

func sortedKeys(ms ...map[string]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys
}
