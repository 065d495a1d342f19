package coordinator

import (
	"context"
	"net/http"
	"net/url"

	"github.com/orchd/orch/queue"
)

// RunJob submits a job spec (POST /jobs).
func (c *Client) RunJob(ctx context.Context, spec queue.JobSpec) (JobRunResult, error) {
	var out JobRunResult
	err := c.do(ctx, http.MethodPost, "/jobs", spec, &out)
	return out, err
}

// PlanJob asks what running the spec would do, without doing it.
func (c *Client) PlanJob(ctx context.Context, spec queue.JobSpec) (JobPlanResult, error) {
	var out JobPlanResult
	err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(spec.Name)+"/plan", spec, &out)
	return out, err
}

// ListJobs lists the jobs.
func (c *Client) ListJobs(ctx context.Context) ([]queue.JobSummary, error) {
	var out []queue.JobSummary
	err := c.do(ctx, http.MethodGet, "/jobs", nil, &out)
	return out, err
}

// JobStatus returns a job with its tasks and latest events.
func (c *Client) JobStatus(ctx context.Context, name string) (JobStatus, error) {
	var out JobStatus
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(name), nil, &out)
	return out, err
}

// JobVersions returns a job's versions, newest first, with their diffs.
func (c *Client) JobVersions(ctx context.Context, name string) ([]queue.JobVersion, error) {
	var out []queue.JobVersion
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(name)+"/versions", nil, &out)
	return out, err
}

// JobDeployments returns a job's deployments, newest first.
func (c *Client) JobDeployments(ctx context.Context, name string) ([]queue.Deployment, error) {
	var out []queue.Deployment
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(name)+"/deployments", nil, &out)
	return out, err
}

// JobEndpoints returns where a job's running tasks are.
func (c *Client) JobEndpoints(ctx context.Context, name string) ([]queue.Endpoint, error) {
	var out []queue.Endpoint
	err := c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(name)+"/endpoints", nil, &out)
	return out, err
}

// ScaleJob sets a job's count, as a new version.
func (c *Client) ScaleJob(ctx context.Context, name string, count int) (JobRunResult, error) {
	var out JobRunResult
	err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/scale", ScaleRequest{Count: &count}, &out)
	return out, err
}

// RevertJob submits one of a job's versions again, as a new version.
func (c *Client) RevertJob(ctx context.Context, name string, version int) (JobRunResult, error) {
	var out JobRunResult
	err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/revert", RevertRequest{Version: version}, &out)
	return out, err
}

// RestartJob replaces every task of a job, as a rolling update.
func (c *Client) RestartJob(ctx context.Context, name string) (JobRunResult, error) {
	var out JobRunResult
	err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/restart", nil, &out)
	return out, err
}

// PromoteJob promotes a deployment that waits with healthy canaries.
func (c *Client) PromoteJob(ctx context.Context, name string) (queue.Deployment, error) {
	var out queue.Deployment
	err := c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/promote", nil, &out)
	return out, err
}

// StopJob stops a job; with purge it is deleted once its tasks have ended.
func (c *Client) StopJob(ctx context.Context, name string, purge bool) (queue.Job, error) {
	path := "/jobs/" + url.PathEscape(name)
	if purge {
		path += "?purge=true"
	}
	var out queue.Job
	err := c.do(ctx, http.MethodDelete, path, nil, &out)
	return out, err
}
