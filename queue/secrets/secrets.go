// Package secrets seals a task's secrets with the cluster's key, so that
// what PostgreSQL stores (and what a dump of it holds) is ciphertext.
//
// A coordinator seals the values when it accepts a task; the agent of the
// node the task is placed on opens them just before it starts the
// container, which gets them as environment variables. Both read the same
// key file (--secrets-key-file; `orch dev` makes one). The sealed form is
//
//	version (1 byte) | key id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// with the task's id as additional data, so a sealed blob copied onto
// another task does not open. The key id (the head of the key's SHA-256)
// lets a node with the wrong key say so instead of failing obscurely.
package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// KeySize is the length of a cluster key: AES-256.
const KeySize = 32

const (
	version   = 1
	idSize    = 8
	nonceSize = 12
	// filePrefix starts a key file, so that a file of another kind is not
	// taken for a key.
	filePrefix = "orch-secrets-key-v1:"
)

// ErrNoKey means secrets were given or must be opened where no key is
// configured.
var ErrNoKey = errors.New("no secrets key is configured")

// ErrWrongKey means a sealed value was not sealed with this key (or for
// this task), or was tampered with.
var ErrWrongKey = errors.New("sealed with another key")

// Key is a cluster's secrets key. Its zero value is not usable; a nil *Key
// seals nothing and opens nothing (ErrNoKey).
type Key struct {
	aead cipher.AEAD
	id   [idSize]byte
}

// NewKey builds a key from KeySize raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a secrets key is %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	k := &Key{aead: aead}
	sum := sha256.Sum256(raw)
	copy(k.id[:], sum[:idSize])
	return k, nil
}

// ID names the key without revealing it: the head of its SHA-256, in hex.
func (k *Key) ID() string { return hex.EncodeToString(k.id[:]) }

// Generate makes a new random key and returns it in key-file form.
func Generate() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return filePrefix + base64.StdEncoding.EncodeToString(raw) + "\n", nil
}

// Parse reads a key in key-file form.
func Parse(text string) (*Key, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(text), filePrefix)
	if !ok {
		return nil, fmt.Errorf("not an orch secrets key (it must start with %q; make one with: orch token secrets-key FILE)", filePrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("secrets key is not valid base64")
	}
	return NewKey(raw)
}

// LoadFile reads a key file. "" means no key: it returns nil, nil. The file
// must not be readable by others than its owner.
func LoadFile(path string) (*Key, error) {
	if path == "" {
		return nil, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets key file %s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	k, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("secrets key file %s: %w", path, err)
	}
	return k, nil
}

// EnsureFile loads the key file at path, creating it with a new key (mode
// 0600) when it does not exist yet.
func EnsureFile(path string) (*Key, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		text, err := Generate()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secrets key file: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.WriteString(text)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("writing secrets key file: %w", err)
		}
	}
	return LoadFile(path)
}

// Seal encrypts a task's secrets for the task id. No secrets seal to nil.
func (k *Key) Seal(task uuid.UUID, values map[string]string) ([]byte, error) {
	if len(values) == 0 {
		return nil, nil
	}
	if k == nil {
		return nil, ErrNoKey
	}
	plain, err := json.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("sealing secrets: %w", err)
	}
	out := make([]byte, 1+idSize+nonceSize, 1+idSize+nonceSize+len(plain)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.id[:])
	nonce := out[1+idSize:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return k.aead.Seal(out, nonce, plain, task[:]), nil
}

// Open decrypts what Seal made for the task id. Nothing to open gives nil.
func (k *Key) Open(task uuid.UUID, sealed []byte) (map[string]string, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	if k == nil {
		return nil, ErrNoKey
	}
	if len(sealed) < 1+idSize+nonceSize+k.aead.Overhead() || sealed[0] != version {
		return nil, fmt.Errorf("sealed secrets of task %s are malformed", task)
	}
	if id := sealed[1 : 1+idSize]; !bytes.Equal(id, k.id[:]) {
		return nil, fmt.Errorf("secrets of task %s: %w %s (this node's key is %s)", task, ErrWrongKey, hex.EncodeToString(id), k.ID())
	}
	nonce := sealed[1+idSize : 1+idSize+nonceSize]
	plain, err := k.aead.Open(nil, nonce, sealed[1+idSize+nonceSize:], task[:])
	if err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w, or altered", task, ErrWrongKey)
	}
	var values map[string]string
	if err := json.Unmarshal(plain, &values); err != nil {
		return nil, fmt.Errorf("secrets of task %s: %w", task, err)
	}
	return values, nil
}
