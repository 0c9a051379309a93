package store

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// idTimeLayout is the time part of a version id: UTC, lower case, so ids
// pass spec.ValidateVersionID and sort chronologically as strings.
const idTimeLayout = "20060102t150405z"

// NewVersionID names a version created at t (UTC, whole seconds) with the
// given digest: 20261121t150405z-abcdef012345, the time and the first 12
// hex digits of the digest. When t is not after the previous version's time
// (two versions in one second, or a clock that went back), the time is the
// previous one plus a second, so ids stay unique and keep their order.
func NewVersionID(t time.Time, digest string, previous *Version) string {
	t = t.UTC().Truncate(time.Second)
	if previous != nil {
		if last, ok := versionIDTime(previous.ID); ok && !t.After(last) {
			t = last.Add(time.Second)
		}
	}
	hex, _ := DigestHex(digest)
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return t.Format(idTimeLayout) + "-" + hex
}

func versionIDTime(id string) (time.Time, bool) {
	stamp, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(idTimeLayout, stamp)
	return t, err == nil
}

// retain drops the versions that are neither among the newest Keep nor
// pinned. The caller holds s.mu.
func (s *Store) retain(src *Source) {
	n := len(src.Versions)
	keepFrom := max(0, n-s.opts.Keep)
	kept := make([]Version, 0, min(n, s.opts.Keep+len(src.Pins)))
	for i, v := range src.Versions {
		if i >= keepFrom || slices.Contains(src.Pins, v.ID) {
			kept = append(kept, v)
		}
	}
	src.Versions = kept
}

// GC deletes every blob no source's version references.
func (s *Store) GC() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.collectBlobs()
}

// collectBlobs is GC with s.mu held. Temporary files are left alone: they
// belong to writes in progress.
func (s *Store) collectBlobs() error {
	used := map[string]bool{}
	for _, src := range s.sources {
		for _, v := range src.Versions {
			used[strings.TrimPrefix(v.Digest, "sha256:")] = true
		}
	}
	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.blobDir, err)
	}
	deleted := 0
	var firstErr error
	for _, e := range entries {
		if !isBlobName(e.Name()) || used[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(s.blobDir, e.Name())); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("delete blob %s: %w", e.Name(), err)
			}
			continue
		}
		deleted++
		s.opts.Log.V(1).Info("deleted an unreferenced blob", "digest", "sha256:"+e.Name())
	}
	if deleted > 0 && s.opts.OnBlobsDeleted != nil {
		s.opts.OnBlobsDeleted(deleted)
	}
	return firstErr
}
