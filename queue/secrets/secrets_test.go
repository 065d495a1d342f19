package secrets

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
)

func newKey(t *testing.T) *Key {
	t.Helper()
	text, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKey_SealOpen_RoundTripsAndHidesValues(t *testing.T) {
	k := newKey(t)
	task := uuid.New()
	in := map[string]string{"DB_PASSWORD": "hunter2-very-secret", "API_KEY": "abc"}
	sealed, err := k.Seal(task, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range in {
		if bytes.Contains(sealed, []byte(v)) {
			t.Fatalf("sealed form contains the value %q in clear", v)
		}
	}
	out, err := k.Open(task, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out["DB_PASSWORD"] != in["DB_PASSWORD"] || out["API_KEY"] != "abc" {
		t.Fatalf("opened %v, want %v", out, in)
	}
	again, _ := k.Seal(task, in)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same values are identical: the nonce is not fresh")
	}
}

func TestKey_Open_RefusesOtherTaskOtherKeyAndTampering(t *testing.T) {
	k, other := newKey(t), newKey(t)
	task := uuid.New()
	sealed, err := k.Seal(task, map[string]string{"A": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(uuid.New(), sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("opening for another task: %v, want ErrWrongKey", err)
	}
	if _, err := other.Open(task, sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("opening with another key: %v, want ErrWrongKey", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, err := k.Open(task, bad); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("opening a tampered blob: %v, want ErrWrongKey", err)
	}
	if _, err := k.Open(task, sealed[:10]); err == nil {
		t.Fatal("a truncated blob opened")
	}
}

func TestKey_Nil_SealsNothingAndRefusesSecrets(t *testing.T) {
	var k *Key
	if b, err := k.Seal(uuid.New(), nil); err != nil || b != nil {
		t.Fatalf("nil key, no secrets: %v %v", b, err)
	}
	if _, err := k.Seal(uuid.New(), map[string]string{"A": "b"}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("nil key with secrets: %v, want ErrNoKey", err)
	}
	if _, err := k.Open(uuid.New(), []byte{1, 2, 3}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("nil key opening: %v, want ErrNoKey", err)
	}
}

func TestEnsureFile_CreatesOnceWithPrivateMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "secrets.key")
	k1, err := EnsureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %o, want 600", st.Mode().Perm())
	}
	k2, err := EnsureFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() {
		t.Fatal("a second EnsureFile made a new key")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
}

func TestParse_RefusesOtherFiles(t *testing.T) {
	for _, text := range []string{"", "hello", "orch-secrets-key-v1:%%%", "orch-secrets-key-v1:c2hvcnQ="} {
		if _, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) accepted it", text)
		}
	}
}

func FuzzOpen(f *testing.F) {
	text, _ := Generate()
	k, _ := Parse(text)
	task := uuid.New()
	good, _ := k.Seal(task, map[string]string{"A": "b"})
	f.Add(good)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = k.Open(task, b) // must not panic
	})
}
