package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

func openStore(t *testing.T, root string, clk *clocktesting.FakeClock, keep int) *Store {
	t.Helper()
	s, err := Open(Options{Root: root, Keep: keep, Clock: clk, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// commit stores content as a new blob of source name.
func commit(t *testing.T, s *Store, name, content string) (Version, bool) {
	t.Helper()
	w, err := s.NewBlob(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	v, created, err := s.Commit(name, w, "rev-"+content, Origin{Location: "dir:/x", Revision: content})
	if err != nil {
		t.Fatal(err)
	}
	return v, created
}

func ids(vs []Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.ID
	}
	return out
}

func blobCount(t *testing.T, root string) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestVersionIDs(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	t0 := time.Date(2026, 11, 21, 15, 4, 5, 999, time.UTC)
	tests := map[string]struct {
		at       time.Time
		previous *Version
		want     string
	}{
		"first":                    {at: t0, want: "20261121t150405z-abababababab"},
		"after the previous":       {at: t0, previous: &Version{ID: "20261121t150404z-000000000000"}, want: "20261121t150405z-abababababab"},
		"same second as previous":  {at: t0, previous: &Version{ID: "20261121t150405z-000000000000"}, want: "20261121t150406z-abababababab"},
		"clock went back":          {at: t0, previous: &Version{ID: "20261121t160000z-000000000000"}, want: "20261121t160001z-abababababab"},
		"local time is made UTC":   {at: t0.In(time.FixedZone("x", 3600)), want: "20261121t150405z-abababababab"},
		"unparsable previous kept": {at: t0, previous: &Version{ID: "legacy"}, want: "20261121t150405z-abababababab"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := NewVersionID(tc.at, d, tc.previous)
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if err := spec.ValidateVersionID(got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCommitRetentionPinsAndGC(t *testing.T) {
	root := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := openStore(t, root, clk, 2)
	if err := s.Declare("models", "dir", "/x"); err != nil {
		t.Fatal(err)
	}
	v1, created := commit(t, s, "models", "one")
	if !created {
		t.Fatal("first content made no version")
	}
	if _, created := commit(t, s, "models", "one"); created {
		t.Fatal("the newest version's content made a new version")
	}
	clk.Step(time.Minute)
	v2, _ := commit(t, s, "models", "two")
	if _, err := s.SetPins("models", []string{v1.ID}); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute)
	v3, _ := commit(t, s, "models", "three")
	clk.Step(time.Minute)
	v4, _ := commit(t, s, "models", "four")
	src, _ := s.Get("models")
	// Keep 2 (v3, v4) plus the pinned v1; v2 is collected with its blob.
	if want := []string{v1.ID, v3.ID, v4.ID}; !slices.Equal(ids(src.Versions), want) {
		t.Fatalf("versions %v, want %v", ids(src.Versions), want)
	}
	if n := blobCount(t, root); n != 3 {
		t.Fatalf("%d blobs on disk, want 3", n)
	}
	if p, _ := s.BlobPath(v2.Digest); fileExists(p) {
		t.Fatal("v2's blob was not collected")
	}
	// Unpinning lets v1 go.
	if _, err := s.SetPins("models", nil); err != nil {
		t.Fatal(err)
	}
	src, _ = s.Get("models")
	if want := []string{v3.ID, v4.ID}; !slices.Equal(ids(src.Versions), want) {
		t.Fatalf("versions %v, want %v", ids(src.Versions), want)
	}
	// Content equal to an old version (a revert) is a new version sharing
	// the blob.
	clk.Step(time.Minute)
	v5, created := commit(t, s, "models", "three")
	if !created || v5.Digest != v3.Digest || v5.ID == v3.ID {
		t.Fatalf("revert: created %v, %+v vs %+v", created, v5, v3)
	}
	if p, _ := s.BlobPath(v3.Digest); !fileExists(p) {
		t.Fatal("a shared blob was collected")
	}
}

func TestSetPinsRefusesUnknownVersions(t *testing.T) {
	s := openStore(t, t.TempDir(), clocktesting.NewFakeClock(time.Unix(1e9, 0)), 5)
	s.Declare("a", "dir", "/a")
	v, _ := commit(t, s, "a", "x")
	_, err := s.SetPins("a", []string{v.ID, "20200101t000000z-000000000000"})
	if !errors.Is(err, ErrUnknownVersion) || err.Error() != "1 unknown version(s): 20200101t000000z-000000000000" {
		t.Fatalf("got %v", err)
	}
	if _, err := s.SetPins("nope", nil); !errors.Is(err, ErrUnknownSource) {
		t.Fatalf("got %v, want ErrUnknownSource", err)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	root := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Unix(1.8e9, 0))
	s := openStore(t, root, clk, 5)
	s.Declare("a", "git", "https://h/r.git#main")
	v1, _ := commit(t, s, "a", "one")
	clk.Step(time.Second)
	v2, _ := commit(t, s, "a", "two")
	s.SetPins("a", []string{v1.ID})
	before, _ := s.Get("a")
	// A crash leaves temporary files behind; they go at the next Open.
	os.WriteFile(filepath.Join(root, "blobs", "sha256", tmpPrefix+"junk"), []byte("x"), 0o644)
	if _, err := Open(Options{Root: root}); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("a second Open of a locked root: %v", err)
	}
	s.Close()

	s2 := openStore(t, root, clk, 5)
	after, ok := s2.Get("a")
	if !ok {
		t.Fatal("source lost")
	}
	if !slices.Equal(ids(after.Versions), []string{v1.ID, v2.ID}) || !slices.Equal(after.Pins, []string{v1.ID}) || after.Origin != before.Origin {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	if blobCount(t, root) != 2 {
		t.Fatal("temporary file not removed at Open")
	}
}

func TestOpenDropsVersionsWithDamagedBlobs(t *testing.T) {
	root := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Unix(1.8e9, 0))
	s := openStore(t, root, clk, 5)
	s.Declare("a", "dir", "/a")
	v1, _ := commit(t, s, "a", "one")
	clk.Step(time.Second)
	v2, _ := commit(t, s, "a", "two")
	s.SetPins("a", []string{v1.ID})
	s.Close()
	p, _ := s.BlobPath(v1.Digest)
	os.Remove(p)
	s2 := openStore(t, root, clk, 5)
	src, _ := s2.Get("a")
	if !slices.Equal(ids(src.Versions), []string{v2.ID}) || len(src.Pins) != 0 || src.Origin != (Origin{}) {
		t.Fatalf("got versions %v pins %v origin %+v; want v2 only, no pins, no origin", ids(src.Versions), src.Pins, src.Origin)
	}
}

func TestRemoveCollectsOnlyUnsharedBlobs(t *testing.T) {
	root := t.TempDir()
	deleted := 0
	s, err := Open(Options{Root: root, Clock: clocktesting.NewFakeClock(time.Unix(1e9, 0)), OnBlobsDeleted: func(n int) { deleted += n }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Declare("a", "dir", "/a")
	s.Declare("b", "dir", "/b")
	commit(t, s, "a", "shared")
	commit(t, s, "a", "only-a")
	commit(t, s, "b", "shared")
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("a"); ok {
		t.Fatal("a still there")
	}
	if blobCount(t, root) != 1 || deleted != 1 {
		t.Fatalf("%d blobs left, %d deleted; want 1 and 1", blobCount(t, root), deleted)
	}
}

func TestBlobWriterBound(t *testing.T) {
	s := openStore(t, t.TempDir(), clocktesting.NewFakeClock(time.Unix(1e9, 0)), 5)
	w, err := s.NewBlob(4)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write([]byte("12345")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}

func TestBlobPathOnlyFromDigests(t *testing.T) {
	s := openStore(t, t.TempDir(), clocktesting.NewFakeClock(time.Unix(1e9, 0)), 5)
	for _, bad := range []string{"", "sha256:", "sha256:../../etc/passwd", "sha256:" + strings.Repeat("A", 64), "md5:" + strings.Repeat("a", 32), "sha256:" + strings.Repeat("a", 63) + "/"} {
		if p, err := s.BlobPath(bad); err == nil {
			t.Errorf("BlobPath(%q) = %q, want an error", bad, p)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
