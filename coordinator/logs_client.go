package coordinator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orchd/orch/queue"
)

// LogOptions select what Logs and FollowLogs read.
type LogOptions struct {
	Tail  int   // only the last Tail lines; 0 for all
	After int64 // only lines after this id
}

func (o LogOptions) query(follow bool) string {
	q := url.Values{}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.After > 0 {
		q.Set("after", strconv.FormatInt(o.After, 10))
	}
	if follow {
		q.Set("follow", "true")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Logs reads a task's stored output.
func (c *Client) Logs(ctx context.Context, id string, o LogOptions) (queue.LogPage, error) {
	return answer[queue.LogPage](ctx, c, http.MethodGet, "/tasks/"+url.PathEscape(id)+"/logs"+o.query(false), nil)
}

// FollowLogs streams a task's output to fn, frame by frame, until the task
// has ended and its last lines were delivered, or ctx ends. A broken stream
// is picked up again after the last line received.
func (c *Client) FollowLogs(ctx context.Context, id string, o LogOptions, fn func(LogFrame) error) error {
	// No overall timeout: a follow lasts as long as the task.
	hc := &http.Client{Transport: c.http.Transport}
	failures := 0
	for {
		done, err := c.followOnce(ctx, hc, id, &o, fn)
		if done || ctx.Err() != nil {
			return err
		}
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return err
		}
		failures++
		if failures > 10 {
			return fmt.Errorf("following logs of task %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(failures) * 300 * time.Millisecond):
		}
	}
}

func (c *Client) followOnce(ctx context.Context, hc *http.Client, id string, o *LogOptions, fn func(LogFrame) error) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/tasks/"+url.PathEscape(id)+"/logs"+o.query(true), nil)
	if err != nil {
		return true, fmt.Errorf("building request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("reaching coordinator at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		apiErr := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, &apiErr.ErrorBody) != nil || apiErr.ErrorBody.Error == "" {
			apiErr.ErrorBody.Error = fmt.Sprintf("GET /tasks/%s/logs: %s", id, resp.Status)
		}
		return true, apiErr
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var f LogFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return true, fmt.Errorf("decoding log frame: %w", err)
		}
		if f.Next > o.After {
			o.After = f.Next
		}
		o.Tail = 0 // the tail was read; a reconnect reads on from After
		if err := fn(f); err != nil {
			return true, err
		}
		if f.Done {
			return true, nil
		}
	}
	if ctx.Err() != nil {
		return true, nil
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, io.ErrUnexpectedEOF
}

// NodeStats returns a node with its latest limit samples, newest first.
func (c *Client) NodeStats(ctx context.Context, node string, limit int) (NodeDetail, error) {
	return answer[NodeDetail](ctx, c, http.MethodGet, "/nodes/"+url.PathEscape(node)+"/stats?limit="+strconv.Itoa(limit), nil)
}
