package coordinator

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/orchd/orch/queue"
)

// DefaultCreateRetry is how long Client.CreateTask keeps trying when the
// coordinator cannot be reached or answers 5xx: long enough for a
// coordinator to restart or the database to fail over.
const DefaultCreateRetry = time.Minute

// Client talks to a coordinator's API. The CLI is its main user.
type Client struct {
	base  string
	token string
	http  *http.Client
	// retryFor bounds CreateTask's retries; onRetry, if set, hears of each.
	retryFor time.Duration
	onRetry  func(err error, wait time.Duration)
}

// RetryCreates sets how long CreateTask keeps trying (0: one try) and a
// function told of every failed try before the next (nil: none), e.g. to
// tell the user.
func (c *Client) RetryCreates(d time.Duration, notify func(err error, wait time.Duration)) {
	c.retryFor, c.onRetry = d, notify
}

// NewClient returns a client for the coordinator at addr (http:// or https://).
func NewClient(addr, token string) (*Client, error) {
	return NewClientTLS(addr, token, "")
}

// NewClientTLS is NewClient trusting, besides the system's roots, the CA
// certificate in caFile (for coordinators with their own certificates).
func NewClientTLS(addr, token, caFile string) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, queue.Invalid("addr", fmt.Sprintf("%q is not a coordinator address", addr), "use e.g. http://127.0.0.1:8989")
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, queue.Invalid("ca-cert", fmt.Sprintf("reading %s: %v", caFile, err), "give a PEM file with the coordinator's CA certificate")
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, queue.Invalid("ca-cert", caFile+" holds no PEM certificate", "give a PEM file with the coordinator's CA certificate")
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		hc.Transport = tr
	}
	return &Client{base: strings.TrimRight(addr, "/"), token: token, http: hc, retryFor: DefaultCreateRetry}, nil
}

// APIError is an error answer from the coordinator.
type APIError struct {
	Status int
	ErrorBody
}

func (e *APIError) Error() string {
	msg := e.ErrorBody.Error
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap maps the status back onto orch's sentinels so callers can use errors.Is.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return queue.ErrInvalid
	case http.StatusNotFound:
		return queue.ErrNotFound
	case http.StatusConflict:
		return queue.ErrConflict
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if in == nil && method == http.MethodPost {
		// The API takes changes only as JSON (see csrf.go), also when
		// there is nothing to say.
		in = struct{}{}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{fmt.Errorf("reaching coordinator at %s: %w", c.base, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &transportError{fmt.Errorf("reading answer from %s: %w", c.base, err)}
	}
	if resp.StatusCode >= 400 {
		apiErr := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, &apiErr.ErrorBody) != nil || apiErr.ErrorBody.Error == "" {
			apiErr.ErrorBody.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return apiErr
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// transportError is a request that got no complete answer: the request
// may or may not have been carried out.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// CreateTask submits a task. It chooses the task's id unless req names one,
// so that it can send the create again, for up to the RetryCreates time
// (DefaultCreateRetry), when the coordinator cannot be reached, the answer
// is lost or the coordinator answers 5xx: the coordinator answers a create
// whose id exists with the same spec with the task it made (so the user sees
// one task and success), and one with another spec with a conflict.
func (c *Client) CreateTask(ctx context.Context, req TaskRequest) (queue.Task, error) {
	t, err := c.SubmitTask(ctx, req)
	return t.Task, err
}

// SubmitTask is CreateTask with the coordinator's warnings about the task.
func (c *Client) SubmitTask(ctx context.Context, req TaskRequest) (CreatedTask, error) {
	if req.ID == "" {
		req.ID = uuid.Must(uuid.NewV7()).String()
	}
	var t CreatedTask
	err := c.retrying(ctx, func() error { return c.do(ctx, http.MethodPost, "/tasks", req, &t) })
	return t, err
}

// CreateTasks submits tasks in one request (up to postgres.MaxBatch: the
// coordinator stores them in one transaction, all or none) and returns
// them, with warnings, in the order given. Like CreateTask it chooses the
// id of each task that names none (reqs is not changed) and sends the
// request again while it gets no answer or a 5xx: the tasks stored by a try
// whose answer was lost come back as they are. An error about one task
// names it by its index in reqs ("[3].image: ...").
func (c *Client) CreateTasks(ctx context.Context, reqs []TaskRequest) ([]CreatedTask, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	withIDs := make([]TaskRequest, len(reqs))
	for i, req := range reqs {
		if req.ID == "" {
			req.ID = uuid.Must(uuid.NewV7()).String()
		}
		withIDs[i] = req
	}
	var ts []CreatedTask
	err := c.retrying(ctx, func() error { return c.do(ctx, http.MethodPost, "/tasks", withIDs, &ts) })
	if err == nil && len(ts) != len(reqs) {
		return nil, fmt.Errorf("creating tasks: %d sent, %d in the answer", len(reqs), len(ts))
	}
	return ts, err
}

// retrying runs try until it succeeds, fails for good, or c.retryFor has
// passed, backing off from 100 ms to 2 s between tries.
func (c *Client) retrying(ctx context.Context, try func() error) error {
	deadline := time.Now().Add(c.retryFor)
	wait := 100 * time.Millisecond
	for n := 1; ; n++ {
		err := try()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			if n == 1 {
				return err
			}
			return fmt.Errorf("%w (gave up after %d tries in %s)", err, n, c.retryFor)
		}
		if c.onRetry != nil {
			c.onRetry(err, wait)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// retryable says whether a request that failed with err may be sent again
// in the hope of success: it got no answer, or a server error.
func retryable(err error) bool {
	var te *transportError
	var ae *APIError
	switch {
	case errors.As(err, &te):
		return true
	case errors.As(err, &ae):
		return ae.Status >= 500
	}
	return false
}

// answer is do for an answer of type T, which most methods return as it is.
func answer[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var v T
	err := c.do(ctx, method, path, body, &v)
	return v, err
}

// ListTasks lists tasks; states may be empty.
// TaskQuery narrows ListTasks; zero values mean any (and the API's default
// limit).
type TaskQuery struct {
	States []string
	Node   string
	Limit  int
}

// ListTasks lists tasks, newest first.
func (c *Client) ListTasks(ctx context.Context, tq TaskQuery) ([]queue.Task, error) {
	q := url.Values{}
	if len(tq.States) > 0 {
		q.Set("state", strings.Join(tq.States, ","))
	}
	if tq.Node != "" {
		q.Set("node", tq.Node)
	}
	if tq.Limit > 0 {
		q.Set("limit", strconv.Itoa(tq.Limit))
	}
	path := "/tasks"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return answer[[]queue.Task](ctx, c, http.MethodGet, path, nil)
}

// GetTask returns a task with its events.
func (c *Client) GetTask(ctx context.Context, id string) (TaskDetail, error) {
	return answer[TaskDetail](ctx, c, http.MethodGet, "/tasks/"+url.PathEscape(id), nil)
}

// DeleteTask asks for a task to be stopped.
func (c *Client) DeleteTask(ctx context.Context, id string) (queue.Task, error) {
	return answer[queue.Task](ctx, c, http.MethodDelete, "/tasks/"+url.PathEscape(id), nil)
}

// PurgeTask deletes a finished task and everything recorded about it.
func (c *Client) PurgeTask(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/tasks/"+url.PathEscape(id)+"?purge=true", nil, nil)
}

// ListNodes lists the nodes.
func (c *Client) ListNodes(ctx context.Context) ([]queue.Node, error) {
	return answer[[]queue.Node](ctx, c, http.MethodGet, "/nodes", nil)
}

// GetNode returns one node by name or id.
func (c *Client) GetNode(ctx context.Context, node string) (queue.Node, error) {
	return answer[queue.Node](ctx, c, http.MethodGet, "/nodes/"+url.PathEscape(node), nil)
}

// Cordon stops (on) or resumes (off) new placements on a node.
func (c *Client) Cordon(ctx context.Context, node string, on bool) (queue.Node, error) {
	verb := "uncordon"
	if on {
		verb = "cordon"
	}
	return answer[queue.Node](ctx, c, http.MethodPost, "/nodes/"+url.PathEscape(node)+"/"+verb, nil)
}

// Healthz checks the coordinator and its database.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// ListVolumes lists the named volumes.
func (c *Client) ListVolumes(ctx context.Context) ([]queue.Volume, error) {
	return answer[[]queue.Volume](ctx, c, http.MethodGet, "/volumes", nil)
}

// DeleteVolume asks for a named volume to be removed by its node's agent.
func (c *Client) DeleteVolume(ctx context.Context, name string) (queue.Volume, error) {
	return answer[queue.Volume](ctx, c, http.MethodDelete, "/volumes/"+url.PathEscape(name), nil)
}

// RegistryLogin stores a private registry's login for agents' pulls.
func (c *Client) RegistryLogin(ctx context.Context, server string, login RegistryLogin) (queue.RegistryCredential, error) {
	return answer[queue.RegistryCredential](ctx, c, http.MethodPut, "/registries/"+url.PathEscape(server), login)
}

// ListRegistries lists the registries orch has logins for.
func (c *Client) ListRegistries(ctx context.Context) ([]queue.RegistryCredential, error) {
	return answer[[]queue.RegistryCredential](ctx, c, http.MethodGet, "/registries", nil)
}

// RegistryLogout forgets a registry's login.
func (c *Client) RegistryLogout(ctx context.Context, server string) (queue.RegistryCredential, error) {
	return answer[queue.RegistryCredential](ctx, c, http.MethodDelete, "/registries/"+url.PathEscape(server), nil)
}
