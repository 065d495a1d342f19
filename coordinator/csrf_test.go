package coordinator

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGuardChanges_RefusesWhatABrowserCouldBeMadeToSend plays the requests
// another site's page can make a logged-in browser send, and the ones the
// CLI sends.
func TestGuardChanges_RefusesWhatABrowserCouldBeMadeToSend(t *testing.T) {
	t.Parallel()
	h := newTestCoordinator(t, Options{Tokens: tokens(t)}).Handler()
	task := `{"image":"alpine:3.20"}`
	for _, tc := range []struct {
		name                 string
		method, path, body   string
		contentType          string
		basic, bearer        string
		secFetchSite, origin string
		want                 int
	}{
		{name: "form post with basic auth", method: "POST", path: "/tasks", body: task, contentType: "text/plain", basic: adminSecret, want: 403},
		{name: "urlencoded form with basic auth", method: "POST", path: "/nodes/n1/cordon", body: "a=b", contentType: "application/x-www-form-urlencoded", basic: adminSecret, want: 403},
		{name: "no content type, bearer", method: "POST", path: "/tasks", body: task, bearer: adminSecret, want: 415},
		{name: "text/plain, bearer", method: "POST", path: "/nodes/n1/cordon", body: "{}", contentType: "text/plain", bearer: adminSecret, want: 415},
		{name: "json with basic auth", method: "POST", path: "/tasks", body: task, contentType: "application/json", basic: adminSecret, want: 403},
		{name: "delete with basic auth", method: "DELETE", path: "/tasks/01a230a1-8235-73cf-a0d7-66578d13f6da", basic: adminSecret, want: 403},
		{name: "cross-site json with bearer", method: "POST", path: "/tasks", body: task, contentType: "application/json", bearer: adminSecret, secFetchSite: "cross-site", want: 403},
		{name: "foreign origin with bearer", method: "POST", path: "/tasks", body: task, contentType: "application/json", bearer: adminSecret, origin: "https://evil.example", want: 403},
		{name: "the CLI's create", method: "POST", path: "/tasks", body: task, contentType: "application/json", bearer: writeSecret, want: 201},
		{name: "the CLI's cordon", method: "POST", path: "/nodes/n1/cordon", body: "{}", contentType: "application/json; charset=utf-8", bearer: adminSecret, want: 404},
		{name: "the status page with basic auth", method: "GET", path: "/", basic: readSecret, want: 200},
		{name: "listing with basic auth, cross-site", method: "GET", path: "/tasks", basic: readSecret, secFetchSite: "cross-site", want: 200},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		if tc.basic != "" {
			req.SetBasicAuth("operator", tc.basic)
		}
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		if tc.secFetchSite != "" {
			req.Header.Set("Sec-Fetch-Site", tc.secFetchSite)
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
		}
		if rec.Code >= 400 && !strings.Contains(rec.Header().Get("Content-Type"), "json") {
			t.Errorf("%s: error answer is not JSON: %q", tc.name, rec.Body.String())
		}
	}
}
