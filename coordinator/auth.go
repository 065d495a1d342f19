package coordinator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Scope is what a token lets its holder do.
type Scope int

const (
	// ScopeNone is an unauthenticated caller.
	ScopeNone Scope = iota
	// ScopeRead may look: every GET.
	ScopeRead
	// ScopeWrite may also submit and stop ordinary tasks: what a CI system
	// or a developer needs.
	ScopeWrite
	// ScopeAdmin may do everything: manage nodes (cordon, drain) and ask for
	// containers with privileges or the host's network.
	ScopeAdmin
)

func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return "none"
}

// Tokens holds the API's bearer tokens as SHA-256 hashes only, so a config
// file or process dump never holds a usable secret when configured by hash.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash  [sha256.Size]byte
	scope Scope
}

// constantTimeEqual is the comparison every token check goes through. It is a
// variable so that a test can prove it is the one used.
var constantTimeEqual = subtle.ConstantTimeCompare

// AddToken configures a token for scope. spec is either the secret itself or
// "sha256:<64 hex digits>", its hash.
func (t *Tokens) AddToken(scope Scope, spec string) error {
	var e tokenEntry
	e.scope = scope
	if spec == "" {
		return fmt.Errorf("an empty token was configured (an unset variable?): give the secret or sha256:<hex>")
	}
	if hexHash, ok := strings.CutPrefix(spec, "sha256:"); ok {
		b, err := hex.DecodeString(hexHash)
		if err != nil || len(b) != sha256.Size {
			return fmt.Errorf("token %q: sha256: must be followed by 64 hex digits", redactToken(spec))
		}
		copy(e.hash[:], b)
	} else {
		if len(spec) < 16 {
			return fmt.Errorf("token %q is too short: use at least 16 characters (orch token generate makes one)", redactToken(spec))
		}
		e.hash = sha256.Sum256([]byte(spec))
	}
	t.entries = append(t.entries, e)
	return nil
}

// Empty reports whether no token is configured.
func (t *Tokens) Empty() bool { return t == nil || len(t.entries) == 0 }

// Check returns the scope of a presented token, ScopeNone if it matches none.
// It hashes the presented token and compares it with every configured hash
// in constant time, without stopping at the first match, so that neither
// the secret's content nor which entry matched shows in the timing.
func (t *Tokens) Check(presented string) Scope {
	if t == nil || presented == "" {
		return ScopeNone
	}
	h := sha256.Sum256([]byte(presented))
	best := ScopeNone
	for _, e := range t.entries {
		if constantTimeEqual(h[:], e.hash[:]) == 1 && e.scope > best {
			best = e.scope
		}
	}
	return best
}

// HashToken returns the "sha256:..." form of a secret, for configuring a
// coordinator without handing it the secret.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:])
}

func redactToken(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:4] + "****"
}

// presentedToken reads a bearer token, or the password of Basic auth so that
// a browser can open the status page with its own login prompt; basic says
// which (see csrf.go for why that matters).
func presentedToken(r *http.Request) (token string, basic bool) {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(tok), false
	}
	if b64, ok := strings.CutPrefix(h, "Basic "); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err == nil {
			if _, pass, ok := strings.Cut(string(raw), ":"); ok {
				return pass, true
			}
		}
	}
	return "", false
}

// requiredScope is the scope a request needs: nothing for the health check,
// read for looking, write for submitting and stopping tasks and jobs, admin
// for the rest. A task or job asking for privileges needs admin too;
// createTask and runJob check that once they have read the body.
func requiredScope(r *http.Request) Scope {
	if r.URL.Path == "/healthz" {
		return ScopeNone
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ScopeRead
	}
	if r.URL.Path == "/tasks" || strings.HasPrefix(r.URL.Path, "/tasks/") ||
		r.URL.Path == "/jobs" || strings.HasPrefix(r.URL.Path, "/jobs/") {
		return ScopeWrite
	}
	return ScopeAdmin
}

// withAuth refuses requests whose token does not grant the scope they need:
// 401 without a valid token, 403 with one that is too weak. With no tokens
// configured every caller is admin; Run only allows that on loopback unless
// told --insecure.
func (c *Coordinator) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		need := requiredScope(r)
		have := ScopeAdmin
		if !c.opts.Tokens.Empty() {
			tok, basic := presentedToken(r)
			have = c.opts.Tokens.Check(tok)
			if basic && have > ScopeRead && !safeMethod(r) {
				// A browser resends Basic credentials by itself, also for
				// requests another site's page makes: they only read.
				writeJSON(w, http.StatusForbidden, ErrorBody{Error: "Basic-auth credentials (a browser's login) may only read",
					Hint: "send the token as Authorization: Bearer <token> to change anything"})
				return
			}
		}
		switch {
		case have >= need:
			next.ServeHTTP(w, r.WithContext(withScope(r.Context(), have)))
		case have == ScopeNone:
			unauthorized(w, r)
		default:
			forbid(w, have, r.Method+" "+r.URL.Path, need)
		}
	})
}

// unauthorized answers 401 with the challenge the client can answer. A
// browser (it asks for HTML) gets a Basic challenge only: Chromium and
// Firefox read the first scheme of a WWW-Authenticate header, and one that
// starts with Bearer, which they cannot answer, keeps them from asking for a
// login or sending the credentials of a user:token@host URL. API clients get
// Bearer, the scheme they should use.
func unauthorized(w http.ResponseWriter, r *http.Request) {
	if wantsHTML(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="orch", charset="UTF-8"`)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, loginHelpHTML)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="orch"`)
	writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "missing or unknown API token",
		Hint: "send Authorization: Bearer <token>; the CLI reads ORCH_TOKEN"})
}

// loginHelpHTML is what a browser shows when its login was cancelled or
// wrong.
const loginHelpHTML = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>orch: log in</title></head>
<body style="font: 14px/1.4 system-ui, sans-serif; margin: 1.5em">
<h1 style="font-size: 1.3em">orch: log in</h1>
<p>This page needs an API token. Log in with any user name and the token as the password
(a read token is enough), or open <code>http://orch:TOKEN@HOST:PORT/</code>.</p>
</body></html>
`

// wantsHTML reports whether the request comes from a browser navigating to a
// page: it accepts text/html.
func wantsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

func forbid(w http.ResponseWriter, have Scope, what string, need Scope) {
	writeJSON(w, http.StatusForbidden, ErrorBody{Error: fmt.Sprintf("this token has %s scope; %s needs %s", have, what, need),
		Hint: "use a token with " + need.String() + " scope"})
}
