package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// wakeWait is how long one long-poll of a coordinator waits: well under
// the idle timeouts of the proxies and NATs that may sit in between.
const wakeWait = 25 * time.Second

// longPoll hears of the node's work from the coordinators, for an agent
// that reaches PostgreSQL through a transaction pooler and so cannot LISTEN
// (see coordinator/wake.go). It waits on one coordinator at a time and moves
// to the next when one fails. While a wait stands, a wake-up cannot be
// missed, so the main loop polls rarely (listening); every new connection
// to a coordinator wakes the loop once, for what may have been missed.
func (a *Agent) longPoll(ctx context.Context) {
	client := &http.Client{Timeout: wakeWait + 10*time.Second}
	var after uint64
	backoff := 200 * time.Millisecond
	fresh := true
	for i := 0; ctx.Err() == nil; {
		base := a.opts.Coordinators[i%len(a.opts.Coordinators)]
		// A fresh wait asks for an answer at once: until one comes the
		// agent cannot know it will be woken, and polls every
		// PollInterval (a fleet's first 25 s would be spent so).
		wait := wakeWait
		if fresh {
			wait = 0
		}
		seq, err := a.waitOn(ctx, client, base, after, wait)
		if err != nil {
			a.listening.Store(false)
			if ctx.Err() != nil {
				return
			}
			a.log.Debug("waiting for work at a coordinator failed", "coordinator", base, "err", err)
			i++
			fresh = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		a.listening.Store(true)
		if fresh || seq != after {
			a.poke()
		}
		fresh, after = false, seq
	}
}

// waitOn is one long-poll of the coordinator at base.
func (a *Agent) waitOn(ctx context.Context, client *http.Client, base string, after uint64, wait time.Duration) (uint64, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "wait": {wait.String()}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/nodes/"+a.node.ID.String()+"/wake?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	if a.opts.CoordinatorToken != "" {
		req.Header.Set("Authorization", "Bearer "+a.opts.CoordinatorToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", resp.Status, body)
	}
	var ans struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return 0, fmt.Errorf("reading the coordinator's answer: %w", err)
	}
	return ans.Seq, nil
}
