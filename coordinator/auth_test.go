package coordinator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	adminSecret = "admin-secret-0123456789"
	writeSecret = "write-secret-0123456789"
	readSecret  = "read-secret-0123456789ab"
)

func tokens(t *testing.T) *Tokens {
	toks := &Tokens{}
	if err := toks.AddToken(ScopeAdmin, adminSecret); err != nil {
		t.Fatal(err)
	}
	if err := toks.AddToken(ScopeRead, HashToken(readSecret)); err != nil {
		t.Fatal(err)
	}
	if err := toks.AddToken(ScopeWrite, writeSecret); err != nil {
		t.Fatal(err)
	}
	return toks
}

func call(t *testing.T, h http.Handler, method, path, token, body string) int {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 400 && !strings.Contains(rec.Header().Get("Content-Type"), "json") {
		t.Errorf("%s %s: error answer is not JSON: %q", method, path, rec.Body.String())
	}
	return rec.Code
}

func TestAuth_ScopesDecideWhoMayDoWhat(t *testing.T) {
	t.Parallel()
	h := newTestCoordinator(t, Options{Tokens: tokens(t)}).Handler()
	task := `{"image":"alpine:3.20"}`
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/healthz", "", "", 200},
		{"GET", "/tasks", "", "", 401},
		{"POST", "/tasks", "", task, 401},
		{"GET", "/tasks", "wrong-token-0123456789", "", 401},
		{"GET", "/tasks", readSecret, "", 200},
		{"GET", "/nodes", readSecret, "", 200},
		{"POST", "/tasks", readSecret, task, 403},
		{"DELETE", "/tasks/01a230a1-8235-73cf-a0d7-66578d13f6da", readSecret, "", 403},
		{"POST", "/nodes/n1/cordon", readSecret, "", 403},
		{"POST", "/tasks", writeSecret, task, 201},
		{"GET", "/tasks", writeSecret, "", 200},
		{"POST", "/nodes/n1/cordon", writeSecret, "", 403},
		{"DELETE", "/tasks/01a230a1-8235-73cf-a0d7-66578d13f6da", writeSecret, "", 404},
		{"POST", "/tasks", adminSecret, task, 201},
		{"POST", "/tasks", writeSecret, `{"image":"alpine:3.20","privileged":true}`, 403},
		{"POST", "/tasks", writeSecret, `{"image":"alpine:3.20","network":"host"}`, 403},
		{"POST", "/tasks", adminSecret, `{"image":"alpine:3.20","privileged":true}`, 201},
		{"POST", "/tasks", adminSecret, `{"image":"alpine:3.20","network":"host"}`, 201},
		{"POST", "/tasks", writeSecret, `{"image":"alpine:3.20","volumes":[{"source":"data","target":"/data"}]}`, 201},
		{"POST", "/tasks", writeSecret, `{"image":"alpine:3.20","volumes":[{"source":"/srv/orch/x","target":"/data"}]}`, 403},
		{"POST", "/tasks", adminSecret, `{"image":"alpine:3.20","volumes":[{"source":"/srv/orch/x","target":"/data"}]}`, 201},
		{"GET", "/volumes", readSecret, "", 200},
		{"DELETE", "/volumes/data", writeSecret, "", 403},
		{"DELETE", "/volumes/data", adminSecret, "", 404},
		{"GET", "/tasks", adminSecret, "", 200},
		{"DELETE", "/tasks/01a230a1-8235-73cf-a0d7-66578d13f6da", adminSecret, "", 404},
	} {
		if got := call(t, h, tc.method, tc.path, tc.token, tc.body); got != tc.want {
			t.Errorf("%s %s with %q: %d, want %d", tc.method, tc.path, tc.token, got, tc.want)
		}
	}
}

func TestAuth_BasicAuthPasswordIsAToken(t *testing.T) {
	t.Parallel()
	h := newTestCoordinator(t, Options{Tokens: tokens(t)}).Handler()
	req := httptest.NewRequest("GET", "/tasks", nil)
	req.SetBasicAuth("anyone", readSecret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("basic auth with a read token: %d", rec.Code)
	}
}

// TestAuth_Unauthorized_ChallengesBrowsersWithBasicOnly: a browser (it
// accepts HTML) must get a challenge whose only scheme is Basic, or
// Chromium and Firefox neither ask for a login nor send the credentials of
// a user:token@host URL; API clients keep Bearer and a JSON answer.
func TestAuth_Unauthorized_ChallengesBrowsersWithBasicOnly(t *testing.T) {
	t.Parallel()
	h := newTestCoordinator(t, Options{Tokens: tokens(t)}).Handler()
	for _, tc := range []struct {
		accept, path, wantChallenge, wantType string
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "/", `Basic realm="orch", charset="UTF-8"`, "text/html"},
		{"text/html", "/tasks/01a230a1-8235-73cf-a0d7-66578d13f6da/logs?format=text", `Basic realm="orch", charset="UTF-8"`, "text/html"},
		{"", "/tasks", `Bearer realm="orch"`, "application/json"},
		{"application/json", "/", `Bearer realm="orch"`, "application/json"},
		{"*/*", "/tasks", `Bearer realm="orch"`, "application/json"},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Errorf("Accept %q: %d, want 401", tc.accept, rec.Code)
		}
		if got := rec.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != tc.wantChallenge {
			t.Errorf("Accept %q: WWW-Authenticate %q, want only %q", tc.accept, got, tc.wantChallenge)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
			t.Errorf("Accept %q: Content-Type %q, want %s", tc.accept, ct, tc.wantType)
		}
		if strings.Contains(rec.Body.String(), readSecret) {
			t.Errorf("the answer shows a token")
		}
	}
	// The browser's answer to the challenge is let in, for reading only.
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	req.SetBasicAuth("orch", readSecret)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="nodes"`) {
		t.Errorf("GET / with Basic credentials: %d", rec.Code)
	}
}

func TestTokens_CheckUsesConstantTimeCompareForEveryEntry(t *testing.T) {
	toks := tokens(t)
	calls := 0
	orig := constantTimeEqual
	constantTimeEqual = func(a, b []byte) int { calls++; return orig(a, b) }
	defer func() { constantTimeEqual = orig }()
	if got := toks.Check(adminSecret); got != ScopeAdmin {
		t.Fatalf("admin secret → %s", got)
	}
	// The admin entry is first: the loop must go on to the end anyway, so
	// the time taken does not tell which entry matched.
	if calls != 3 {
		t.Fatalf("compare called %d times for 3 tokens, want 3", calls)
	}
	calls = 0
	if got := toks.Check("nope-nope-nope-nope"); got != ScopeNone || calls != 3 {
		t.Fatalf("unknown token → %s after %d compares", got, calls)
	}
}

func TestTokens_AddToken_RefusesWeakOrMalformed(t *testing.T) {
	var toks Tokens
	for _, bad := range []string{"short", "sha256:abc", "sha256:" + strings.Repeat("z", 64)} {
		if err := toks.AddToken(ScopeAdmin, bad); err == nil {
			t.Errorf("AddToken(%q) accepted", bad)
		}
	}
}
