package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/orchd/orch/queue"
)

// DefaultDrainDeadline is how long a drained node's agent has to hand its
// tasks over before the sweeper moves what is left.
const DefaultDrainDeadline = time.Minute

// MaxDrainDeadline bounds a drain's deadline.
const MaxDrainDeadline = 24 * time.Hour

// DrainRequest is the body of POST /nodes/{node}/drain; it may be empty.
type DrainRequest struct {
	// Deadline is how long the node's agent has to stop its tasks (each
	// with its stop grace) and hand them to other nodes; at the deadline the
	// rest are moved at once. 0 moves them at once. Default 1m.
	Deadline *queue.Duration `json:"deadline,omitempty"`
}

func (c *Coordinator) drainNode(w http.ResponseWriter, r *http.Request) {
	var req DrainRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		c.writeError(w, r, queue.Invalid("body", "could not read the request body", err.Error()))
		return
	}
	if len(body) > MaxBodyBytes {
		c.writeError(w, r, ErrTooLarge)
		return
	}
	if len(body) > 0 {
		if err := strict(body, &req); err != nil {
			var fe *queue.FieldError
			if errors.As(err, &fe) && fe.Field == "duration" {
				fe.Field = "deadline"
			}
			c.writeError(w, r, err)
			return
		}
	}
	deadline := DefaultDrainDeadline
	if req.Deadline != nil {
		deadline = time.Duration(*req.Deadline)
	}
	if deadline < 0 || deadline > MaxDrainDeadline {
		c.writeError(w, r, queue.Invalid("deadline", fmt.Sprintf("deadline %s is outside 0..24h", deadline), "e.g. 5m; 0 moves the tasks at once"))
		return
	}
	n, err := c.store.DrainNode(r.Context(), r.PathValue("node"), deadline)
	if err != nil {
		c.writeError(w, r, err)
		return
	}
	c.log.Info("draining node", "node", n.Name, "deadline", deadline, "live_tasks", n.LiveTasks)
	writeJSON(w, http.StatusOK, n)
}

// Drain starts draining a node: no new work, its tasks move to other nodes,
// and whatever is left after deadline is moved at once.
func (c *Client) Drain(ctx context.Context, node string, deadline time.Duration) (queue.Node, error) {
	d := queue.Duration(deadline)
	return answer[queue.Node](ctx, c, http.MethodPost, "/nodes/"+url.PathEscape(node)+"/drain", DrainRequest{Deadline: &d})
}
