package coordinator

import (
	"context"
	"net/http"
	"net/url"

	"github.com/orchd/orch/queue"
)

// RunJob submits a job spec (POST /jobs).
func (c *Client) RunJob(ctx context.Context, spec queue.JobSpec) (JobRunResult, error) {
	return answer[JobRunResult](ctx, c, http.MethodPost, "/jobs", spec)
}

// PlanJob asks what running the spec would do, without doing it.
func (c *Client) PlanJob(ctx context.Context, spec queue.JobSpec) (JobPlanResult, error) {
	return answer[JobPlanResult](ctx, c, http.MethodPost, "/jobs/"+url.PathEscape(spec.Name)+"/plan", spec)
}

// ListJobs lists the jobs.
func (c *Client) ListJobs(ctx context.Context) ([]queue.JobSummary, error) {
	return answer[[]queue.JobSummary](ctx, c, http.MethodGet, "/jobs", nil)
}

// JobStatus returns a job with its tasks and latest events.
func (c *Client) JobStatus(ctx context.Context, name string) (JobStatus, error) {
	return answer[JobStatus](ctx, c, http.MethodGet, "/jobs/"+url.PathEscape(name), nil)
}

// JobVersions returns a job's versions, newest first, with their diffs.
func (c *Client) JobVersions(ctx context.Context, name string) ([]queue.JobVersion, error) {
	return answer[[]queue.JobVersion](ctx, c, http.MethodGet, "/jobs/"+url.PathEscape(name)+"/versions", nil)
}

// JobDeployments returns a job's deployments, newest first.
func (c *Client) JobDeployments(ctx context.Context, name string) ([]queue.Deployment, error) {
	return answer[[]queue.Deployment](ctx, c, http.MethodGet, "/jobs/"+url.PathEscape(name)+"/deployments", nil)
}

// JobEndpoints returns where a job's running tasks are.
func (c *Client) JobEndpoints(ctx context.Context, name string) ([]queue.Endpoint, error) {
	return answer[[]queue.Endpoint](ctx, c, http.MethodGet, "/jobs/"+url.PathEscape(name)+"/endpoints", nil)
}

// ScaleJob sets a job's count, as a new version.
func (c *Client) ScaleJob(ctx context.Context, name string, count int) (JobRunResult, error) {
	return answer[JobRunResult](ctx, c, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/scale", ScaleRequest{Count: &count})
}

// RevertJob submits one of a job's versions again, as a new version.
func (c *Client) RevertJob(ctx context.Context, name string, version int) (JobRunResult, error) {
	return answer[JobRunResult](ctx, c, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/revert", RevertRequest{Version: version})
}

// RestartJob replaces every task of a job, as a rolling update.
func (c *Client) RestartJob(ctx context.Context, name string) (JobRunResult, error) {
	return answer[JobRunResult](ctx, c, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/restart", nil)
}

// PromoteJob promotes a deployment that waits with healthy canaries.
func (c *Client) PromoteJob(ctx context.Context, name string) (queue.Deployment, error) {
	return answer[queue.Deployment](ctx, c, http.MethodPost, "/jobs/"+url.PathEscape(name)+"/promote", nil)
}

// StopJob stops a job; with purge it is deleted once its tasks have ended.
func (c *Client) StopJob(ctx context.Context, name string, purge bool) (queue.Job, error) {
	path := "/jobs/" + url.PathEscape(name)
	if purge {
		path += "?purge=true"
	}
	return answer[queue.Job](ctx, c, http.MethodDelete, path, nil)
}
