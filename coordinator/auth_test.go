package coordinator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orch/queue/postgres"
	"github.com/orchd/orch/queue/postgres/pgtest"
)

const (
	adminSecret = "admin-secret-0123456789"
	writeSecret = "write-secret-0123456789"
	readSecret  = "read-secret-0123456789ab"
)

func newTestCoordinator(t *testing.T, opts Options) *Coordinator {
	t.Helper()
	store, err := postgres.Open(context.Background(), pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

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

func TestSafeListen(t *testing.T) {
	for _, tc := range []struct {
		listen          string
		tokens, insec   bool
		want            string
		wantErr, notice bool
	}{
		{":8989", false, false, "127.0.0.1:8989", false, true},
		{"127.0.0.1:8989", false, false, "127.0.0.1:8989", false, false},
		{"[::1]:8989", false, false, "[::1]:8989", false, false},
		{"localhost:8989", false, false, "localhost:8989", false, false},
		{"0.0.0.0:8989", false, false, "", true, false},
		{"10.1.2.3:8989", false, false, "", true, false},
		{"0.0.0.0:8989", false, true, "0.0.0.0:8989", false, true},
		{":8989", true, false, ":8989", false, false},
		{"nonsense", true, false, "", true, false},
	} {
		got, notice, err := safeListen(tc.listen, tc.tokens, tc.insec)
		if (err != nil) != tc.wantErr || got != tc.want || (notice != "") != tc.notice {
			t.Errorf("safeListen(%q, tokens=%v, insecure=%v) = %q, %q, %v", tc.listen, tc.tokens, tc.insec, got, notice, err)
		}
	}
}

func TestTLS_ClientTrustsGivenCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	c := newTestCoordinator(t, Options{Listen: "127.0.0.1:0", Tokens: tokens(t), TLSCert: cert, TLSKey: key})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	base := "https://" + addr.String()
	client, err := NewClientTLS(base, readSecret, cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListNodes(ctx); err != nil {
		t.Fatalf("https with the CA: %v", err)
	}
	plain, _ := NewClient(base, readSecret)
	if _, err := plain.ListNodes(ctx); err == nil {
		t.Fatal("a client without the CA trusted a self-signed certificate")
	}
	cancel()
	<-done
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "orch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
