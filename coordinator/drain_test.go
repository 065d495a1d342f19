package coordinator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDrainAPI_RefusesABadDeadline(t *testing.T) {
	c := &Coordinator{}
	for body, want := range map[string]string{
		`{"deadline":"-1s"}`:  "deadline",
		`{"deadline":"soon"}`: "deadline",
		`{"until":"1m"}`:      "until",
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/nodes/n1/drain", strings.NewReader(body))
		req.SetPathValue("node", "n1")
		c.drainNode(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field": "`+want+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", body, rec.Code, rec.Body.String(), want)
		}
	}
}
