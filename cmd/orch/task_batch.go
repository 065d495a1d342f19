package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/orchd/orch/coordinator"
	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// maxTaskFileBytes bounds a file of task requests (orch task create -f):
// some tens of thousands of tasks.
const maxTaskFileBytes = 256 << 20

// countedRequests is n copies of req for orch task create --count n. As
// with Docker Compose's replicas, a name NAME becomes NAME-1 … NAME-n (a
// job's tasks are JOB.1 …, so the two do not meet); without a name each
// task gets its own task-<id>.
func countedRequests(req coordinator.TaskRequest, n int) []coordinator.TaskRequest {
	reqs := make([]coordinator.TaskRequest, n)
	for i := range reqs {
		reqs[i] = req
		if req.Name != "" && n > 1 {
			reqs[i].Name = fmt.Sprintf("%s-%d", req.Name, i+1)
		}
	}
	return reqs
}

// readTaskFile reads the task requests of orch task create -f ("-": standard
// input): a JSON array or a YAML list of objects with the fields of POST
// /tasks. Every one is checked as the API would, before any is sent; an
// error names the task by its index in the file ("[3].image").
func readTaskFile(cmd *cobra.Command, path string) ([]coordinator.TaskRequest, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxTaskFileBytes+1))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usageError{err: fmt.Errorf("reading tasks: %w", err)}
	}
	if len(data) > maxTaskFileBytes {
		return nil, queue.Invalid("file", fmt.Sprintf("%s is larger than %d MiB", path, maxTaskFileBytes>>20), "split it")
	}
	elems, err := taskElems(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	reqs := make([]coordinator.TaskRequest, len(elems))
	for i, e := range elems {
		dec := json.NewDecoder(bytes.NewReader(e))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&reqs[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, queue.Invalid(fmt.Sprintf("[%d]", i), err.Error(), "see go doc ./coordinator for the fields a task takes"))
		}
		if err := checkRequest(reqs[i]); err != nil {
			var fe *queue.FieldError
			if errors.As(err, &fe) {
				err = queue.Invalid(fmt.Sprintf("[%d].%s", i, fe.Field), fe.Message, fe.Hint)
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return reqs, nil
}

// taskElems splits a JSON array or a YAML list into its elements, as JSON.
func taskElems(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, queue.Invalid("file", "not a JSON array of tasks: "+err.Error(), `write [{"image": "..."}, ...] or a YAML list`)
		}
		return nonEmpty(elems)
	}
	var list []any
	if err := yaml.Unmarshal(data, &list); err != nil {
		return nil, queue.Invalid("file", "not a JSON array or a YAML list of tasks: "+err.Error(), "write a list of tasks, each with image: (- image: ...)")
	}
	elems := make([]json.RawMessage, len(list))
	for i, v := range list {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, queue.Invalid(fmt.Sprintf("[%d]", i), "cannot be read as JSON: "+err.Error(), "use string keys")
		}
		elems[i] = b
	}
	return nonEmpty(elems)
}

func nonEmpty(elems []json.RawMessage) ([]json.RawMessage, error) {
	if len(elems) == 0 {
		return nil, queue.Invalid("file", "the file lists no task", "write a list of tasks")
	}
	return elems, nil
}

// checkRequest checks req as the API would, with its words.
func checkRequest(req coordinator.TaskRequest) error {
	spec, err := req.Spec()
	if err != nil {
		return err
	}
	spec.Normalize()
	return spec.Validate()
}

// submitTasks sends reqs in requests of postgres.MaxBatch tasks (one
// transaction each), telling stderr how far it got when there is more than
// one, and returns the created tasks in order. An error names the task by
// its index in reqs and says how many were created before it.
func submitTasks(cmd *cobra.Command, client *coordinator.Client, reqs []coordinator.TaskRequest) ([]coordinator.CreatedTask, error) {
	out := make([]coordinator.CreatedTask, 0, len(reqs))
	for start := 0; start < len(reqs); start += postgres.MaxBatch {
		end := min(start+postgres.MaxBatch, len(reqs))
		ts, err := client.CreateTasks(cmd.Context(), reqs[start:end])
		if err != nil {
			renumber(err, start)
			if start > 0 {
				return nil, fmt.Errorf("%w (tasks [0] to [%d] were created)", err, start-1)
			}
			return nil, err
		}
		out = append(out, ts...)
		if len(reqs) > postgres.MaxBatch {
			fmt.Fprintf(cmd.ErrOrStderr(), "orch: created %d of %d tasks\n", len(out), len(reqs))
		}
	}
	return out, nil
}

var itemField = regexp.MustCompile(`^\[(\d+)\]`)

// renumber makes the index in the field of an API error about one task of a
// request that began at reqs[start] an index into reqs.
func renumber(err error, start int) {
	var ae *coordinator.APIError
	if start == 0 || !errors.As(err, &ae) {
		return
	}
	m := itemField.FindStringSubmatch(ae.Field)
	if m == nil {
		return
	}
	i, _ := strconv.Atoi(m[1])
	ae.Field = fmt.Sprintf("[%d]", start+i) + ae.Field[len(m[0]):]
}
