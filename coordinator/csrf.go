package coordinator

import (
	"fmt"
	"mime"
	"net/http"
)

// Forged requests. A browser sends a site's cookies and cached Basic-auth
// credentials with every request to it, also when another site's page makes
// the request; Basic auth is accepted (for the status page), so a page on
// any site could otherwise make a logged-in operator's browser cordon nodes
// or submit tasks. Three defences, each enough for the usual forgeries, are
// stacked:
//
//   - a state-changing request must say its body is JSON
//     (Content-Type: application/json, else 415): an HTML form cannot send
//     that type, and a script on another origin that sets it must first pass
//     a CORS preflight, which the API never grants;
//   - Basic-auth credentials, the only ones a browser sends by itself, only
//     ever grant reading: changes need an Authorization: Bearer token, which
//     a browser never adds on its own;
//   - cross-origin browser requests that change state are refused outright,
//     by Go's http.CrossOriginProtection (Sec-Fetch-Site, else Origin
//     against Host).
//
// The status page only reads, so it keeps working with a browser's login.

// safeMethod reports whether a request may not change state (RFC 9110 9.2.1).
func safeMethod(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// guardChanges applies the content-type and cross-origin defences to
// state-changing requests (withAuth keeps Basic credentials to reading).
func guardChanges(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, ErrorBody{Error: "cross-origin request refused",
			Hint: "change orch from its CLI, or a script with a Bearer token, not from a page of another site"})
	}))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				what := fmt.Sprintf("content type %q is not JSON", ct)
				if ct == "" {
					what = "the request has no content type"
				}
				writeJSON(w, http.StatusUnsupportedMediaType, ErrorBody{Error: what, Field: "Content-Type",
					Hint: "send Content-Type: application/json (with a JSON body, {} when there is nothing to say)"})
				return
			}
		}
		next.ServeHTTP(w, r)
	}))
}
