package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

// MaxBatchBodyBytes bounds a POST /tasks body that holds an array of tasks
// (up to postgres.MaxBatch of them); each one is still bounded by
// MaxBodyBytes.
const MaxBatchBodyBytes = 16 << 20

// ErrBatchTooLarge is an array of tasks over MaxBatchBodyBytes.
var ErrBatchTooLarge = errors.New("request body is larger than 16 MiB")

// DecodedTask is one task of a POST /tasks body: the id its client chose
// (or uuid.Nil) and its normalized, validated spec.
type DecodedTask struct {
	ID   uuid.UUID
	Spec queue.TaskSpec
}

// DecodeTasks reads a POST /tasks body: one task (DecodeTask), or a JSON
// array of up to postgres.MaxBatch of them, and says which it was. Every
// element of an array is checked before anything is stored; an error
// about one names it in its field, as in "[3].image".
func DecodeTasks(r io.Reader) (tasks []DecodedTask, array bool, err error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBatchBodyBytes+1))
	if err != nil {
		return nil, false, queue.Invalid("body", "could not read the request body", err.Error())
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '[' {
		if len(body) > MaxBodyBytes {
			return nil, false, ErrTooLarge
		}
		id, spec, err := decodeTask(body)
		if err != nil {
			return nil, false, err
		}
		return []DecodedTask{{ID: id, Spec: spec}}, false, nil
	}
	if len(body) > MaxBatchBodyBytes {
		return nil, true, ErrBatchTooLarge
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(body, &elems); err != nil {
		return nil, true, jsonError(err)
	}
	switch {
	case len(elems) == 0:
		return nil, true, queue.Invalid("body", "the array holds no task", "send one task object or an array of them")
	case len(elems) > postgres.MaxBatch:
		return nil, true, queue.Invalid("body", fmt.Sprintf("%d tasks in one request, the limit is %d", len(elems), postgres.MaxBatch),
			fmt.Sprintf("send them in requests of up to %d", postgres.MaxBatch))
	}
	tasks = make([]DecodedTask, len(elems))
	given := make(map[uuid.UUID]int, len(elems))
	for i, e := range elems {
		if len(e) > MaxBodyBytes {
			return nil, true, elemError(i, ErrTooLarge)
		}
		id, spec, err := decodeTask(e)
		if err != nil {
			return nil, true, elemError(i, err)
		}
		if j, dup := given[id]; dup && id != uuid.Nil {
			return nil, true, elemError(i, queue.Invalid("id", fmt.Sprintf("id %s is given twice, also by [%d]", id, j), "give each task its own id, or leave it out"))
		}
		given[id] = i
		tasks[i] = DecodedTask{ID: id, Spec: spec}
	}
	return tasks, true, nil
}

// elemError is err about element i of an array of tasks: a field error
// names "[i].field", anything else is a queue.ItemError.
func elemError(i int, err error) error {
	var fe *queue.FieldError
	if errors.As(err, &fe) {
		field := fmt.Sprintf("[%d]", i)
		if fe.Field != "body" {
			field += "." + fe.Field
		}
		return &queue.FieldError{Field: field, Message: fe.Message, Hint: fe.Hint}
	}
	return &queue.ItemError{Index: i, Err: err}
}
