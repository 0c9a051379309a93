package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"

	"github.com/autocrane/autocrane/spec"
)

// tmpPrefix starts the names of files being written; Open removes leftovers
// and garbage collection never touches them.
const tmpPrefix = ".tmp-"

// ErrTooLarge is returned by a BlobWriter that went past its bound.
var ErrTooLarge = errors.New("version larger than the limit")

// WriteFileAtomic writes data to path through a synced temporary file in the
// same directory and a rename, then syncs the directory.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// BlobWriter receives a version's canonical tar. It hashes what it writes
// into a temporary file next to the blobs; Store.Commit moves it into place.
type BlobWriter struct {
	file *os.File
	hash hash.Hash
	size int64
	max  int64
	done bool
}

func newBlobWriter(dir string, max int64) (*BlobWriter, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("create temporary blob: %w", err)
	}
	return &BlobWriter{file: f, hash: sha256.New(), max: max}, nil
}

// Write implements io.Writer. It fails with ErrTooLarge past the bound.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.max > 0 && int64(len(p)) > w.max-w.size {
		return 0, fmt.Errorf("%w of %d bytes", ErrTooLarge, w.max)
	}
	n, err := w.file.Write(p)
	w.hash.Write(p[:n])
	w.size += int64(n)
	return n, err
}

// Size is the number of bytes written so far.
func (w *BlobWriter) Size() int64 { return w.size }

// Digest is sha256:HEX of what was written so far.
func (w *BlobWriter) Digest() string { return "sha256:" + hex.EncodeToString(w.hash.Sum(nil)) }

// Abort discards the blob. It is safe to call after Commit.
func (w *BlobWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.file.Close()
	os.Remove(w.file.Name())
}

// finish syncs and closes the temporary file.
func (w *BlobWriter) finish() error {
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("sync blob: %w", err)
	}
	if err := w.file.Close(); err != nil {
		return fmt.Errorf("close blob: %w", err)
	}
	return os.Chmod(w.file.Name(), 0o644)
}

// DigestHex checks a digest (sha256:HEX) and returns its HEX, the only form
// in which a request ever reaches a file name.
func DigestHex(digest string) (string, error) {
	if err := spec.ValidateDigest(digest); err != nil {
		return "", err
	}
	return strings.TrimPrefix(digest, "sha256:"), nil
}

// isBlobName reports whether a file name in the blob directory is a blob
// (64 lower-case hex digits) rather than a temporary file.
func isBlobName(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range []byte(name) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
