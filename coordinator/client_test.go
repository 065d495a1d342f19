package coordinator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchd/orch/queue"
	"github.com/orchd/orch/queue/postgres"
)

func TestClient_TLS_TrustsTheGivenCAOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	c := newTestCoordinator(t, Options{Listen: "127.0.0.1:0", Tokens: tokens(t), TLSCert: cert, TLSKey: key})
	addr, stop := runCoordinator(t, c)
	ctx := context.Background()
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
	_ = stop()
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

// The coordinator commits a create and dies before it answers; the client
// finds it down, then back: it sends the create again until it gets an
// answer, and the user gets the one task it made.
func TestClient_CreateTask_RetriedAcrossACoordinatorRestartMakesOneTask(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := newTestCoordinator(t, Options{})
	api := c.Handler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var posts atomic.Int32
	first := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(httptest.NewRecorder(), r) // committed, and the answer is lost:
		posts.Add(1)
		panic(http.ErrAbortHandler) // the connection closes without one
	})}
	go func() { _ = first.Serve(ln) }()

	client, err := NewClient("http://"+addr, "")
	if err != nil {
		t.Fatal(err)
	}
	tries := make(chan error, 100)
	client.RetryCreates(45*time.Second, func(err error, _ time.Duration) { tries <- err })
	type result struct {
		t   queue.Task
		err error
	}
	done := make(chan result, 1)
	go func() {
		tk, err := client.CreateTask(ctx, TaskRequest{Name: "web", Image: "workload:test"})
		done <- result{tk, err}
	}()
	<-tries // the lost answer
	if posts.Load() != 1 {
		t.Fatalf("%d creates reached the first coordinator, want 1", posts.Load())
	}
	_ = first.Close()
	<-tries // the coordinator is down (or the retry landed before it closed)
	<-tries
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	second := &http.Server{Handler: api}
	go func() { _ = second.Serve(ln2) }()
	defer second.Close()

	res := <-done
	if res.err != nil {
		t.Fatalf("create across a restart: %v", res.err)
	}
	tasks, err := c.store.ListTasks(ctx, postgres.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].ID != res.t.ID || res.t.Name != "web" {
		t.Fatalf("tasks %+v, the user was told %s %s: want the one task", tasks, res.t.ID, res.t.Name)
	}
}

// A create whose id exists answers 200 and the stored task when the spec is
// the same, and 409 when it is not; both are final for the client.
func TestAPI_CreateTask_SameIDAgain(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	post := func(body string) (int, queue.Task) {
		resp, err := http.Post(r.srv.URL+"/tasks", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tk queue.Task
		_ = json.NewDecoder(resp.Body).Decode(&tk)
		return resp.StatusCode, tk
	}
	const id = "266592cd-960d-4091-981c-8c25c44b1018"
	body := `{"id":"` + id + `","image":"workload:test","cpu":"0.5","memory":"64MiB","ports":[{"container_port":80}]}`
	if code, _ := post(body); code != http.StatusCreated {
		t.Fatalf("first POST: %d, want 201", code)
	}
	code, tk := post(`{"id":"` + id + `","image":"workload:test","cpu":"500m","memory":67108864,"ports":[{"container_port":80,"protocol":"tcp"}]}`)
	if code != http.StatusOK || tk.ID.String() != id || tk.State != queue.Pending {
		t.Fatalf("same task again: %d %+v, want 200 and the stored task", code, tk)
	}
	if code, _ := post(`{"id":"` + id + `","image":"workload:test","cpu":"1"}`); code != http.StatusConflict {
		t.Fatalf("another spec under the id: %d, want 409", code)
	}
	client, _ := NewClient(r.srv.URL, "")
	_, err := client.CreateTask(context.Background(), TaskRequest{ID: id, Image: "workload:other"})
	if !errors.Is(err, queue.ErrConflict) {
		t.Fatalf("client: %v, want a conflict at once", err)
	}
}

// A task no node could ever hold is accepted (a node that large may join),
// with a warning in the answer that says what is short.
func TestAPI_CreateTask_WarnsOfARequestNoNodeCouldHold(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t)
	r.node("n1") // 2 cores, 4 GiB
	client, _ := NewClient(r.srv.URL, "")
	ctx := context.Background()
	huge, err := client.SubmitTask(ctx, TaskRequest{Name: "huge", Image: "workload:test", Memory: ptr(Quantity("100GiB"))})
	if err != nil {
		t.Fatal(err)
	}
	if huge.State != queue.Pending || len(huge.Warnings) != 1 || !strings.Contains(huge.Warnings[0], "100GiB of memory (the most a node has: 4GiB)") {
		t.Fatalf("huge: %s, warnings %q", huge.State, huge.Warnings)
	}
	small, err := client.SubmitTask(ctx, TaskRequest{Name: "small", Image: "workload:test", Memory: ptr(Quantity("1GiB"))})
	if err != nil || len(small.Warnings) != 0 {
		t.Fatalf("small: warnings %q, %v", small.Warnings, err)
	}
}

func ptr[T any](v T) *T { return &v }
