package queue

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// decodeTree reads one YAML (or JSON) document into plain values, with
// string keys everywhere.
func decodeTree(data []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var tree any
	if err := dec.Decode(&tree); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Invalid("spec", "the spec is empty", "write a YAML or JSON job spec with name:, type: and task:")
		}
		return nil, Invalid("spec", "not valid YAML or JSON: "+err.Error(), "check the indentation and quoting around the line named")
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Invalid("spec", "the file holds more than one document", "give one job per file (remove the ---)")
	}
	return plainTree(tree, "")
}

// plainTree turns what the YAML decoder made into what a JSON decoder
// would have: maps with string keys.
func plainTree(v any, path string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p, err := plainTree(e, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			x[k] = p
		}
		return x, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, Invalid(path, fmt.Sprintf("key %v is not a string", k), "quote the key")
			}
			p, err := plainTree(e, joinPath(path, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = p
		}
		return out, nil
	case []any:
		for i, e := range x {
			p, err := plainTree(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			x[i] = p
		}
		return x, nil
	}
	return v, nil
}
