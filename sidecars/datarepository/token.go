package datarepository

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// maxTokenBytes bounds the token file.
const maxTokenBytes = 4096

// tokenFile is the API's bearer token, read from a file (a Secret volume)
// and read again when the file changes, so a rotated Secret applies
// without a restart. Only the token's sha256 is kept.
type tokenFile struct {
	path string

	mu      sync.Mutex
	stamp   fileStamp
	hash    [sha256.Size]byte
	lastErr error
}

// fileStamp tells whether a file may have changed since it was read.
type fileStamp struct {
	size    int64
	modTime time.Time
}

func newTokenFile(path string) (*tokenFile, error) {
	t := &tokenFile{path: path}
	if err := t.refresh(); err != nil {
		return nil, err
	}
	return t, nil
}

// refresh re-reads the file when its stamp changed. The caller holds t.mu,
// or owns t alone.
func (t *tokenFile) refresh() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	stamp := fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	if stamp == t.stamp && t.lastErr == nil {
		return nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	switch {
	case len(data) > maxTokenBytes:
		return fmt.Errorf("token file %s is larger than %d bytes", t.path, maxTokenBytes)
	case token == "":
		return errors.New("token file " + t.path + " is empty")
	}
	t.hash = sha256.Sum256([]byte(token))
	t.stamp = stamp
	return nil
}

// matches compares a presented token with the file's, in constant time
// (hashes of equal length, so the token's length does not leak either).
// When the file cannot be read, the last token read stays in force.
func (t *tokenFile) matches(got string) bool {
	t.mu.Lock()
	t.lastErr = t.refresh()
	want := t.hash
	t.mu.Unlock()
	h := sha256.Sum256([]byte(got))
	return got != "" && subtle.ConstantTimeCompare(h[:], want[:]) == 1
}
