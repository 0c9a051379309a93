package datadeployer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/autocrane/autocrane/spec"
)

// TestSwapRollbackAndGC walks one deployment through new versions and a
// rollback: the rollback comes from disk (no request to the repository),
// and garbage collection keeps the live and the previous version only.
func TestSwapRollbackAndGC(t *testing.T) {
	h := newHarness(t, nil)
	v1, v2, v3 := newVersion(t, "v1"), newVersion(t, "v2"), newVersion(t, "v3")
	for _, v := range []version{v1, v2, v3} {
		h.repo.Add(v.content)
	}
	h.start()

	h.request("models", v1)
	s := h.waitLive("models", v1)
	if s.Since.IsZero() || s.Requested != v1.request("models") || s.Source != "models" || s.Error != "" || s.Previous != "" {
		t.Fatalf("status after v1: %+v", s)
	}
	if got := h.readData("models", "sub/deeper/c.txt"); got != "v1" {
		t.Fatalf("data = %q", got)
	}

	h.request("models", v2)
	s = h.waitLive("models", v2)
	if s.Previous != v1.request("models") || h.readData("models", "a.txt") != "v2" {
		t.Fatalf("status after v2: %+v", s)
	}
	before := h.blobRequests()

	h.request("models", v1) // rollback
	s = h.waitLive("models", v1)
	if got := h.blobRequests(); got != before {
		t.Fatalf("the rollback sent %d requests to the repository, want none", got-before)
	}
	if s.Previous != v2.request("models") || h.readData("models", "a.txt") != "v1" {
		t.Fatalf("status after the rollback: %+v", s)
	}
	if got := testutil.ToFloat64(h.d.metrics.syncs.WithLabelValues("models", resultLocal)); got != 1 {
		t.Fatalf("local syncs = %v, want 1", got)
	}

	h.request("models", v3)
	h.waitLive("models", v3)
	want := []string{v1.digest[7:], v3.digest[7:]}
	slices.Sort(want)
	eventually(t, "v2 collected", func() (bool, string) {
		got := h.versionsOnDisk()
		return slices.Equal(got, want), strings.Join(got, ",")
	})
	if got := testutil.ToFloat64(h.d.metrics.syncs.WithLabelValues("models", resultDownloaded)); got != 3 {
		t.Fatalf("downloaded syncs = %v, want 3", got)
	}
	if got := testutil.ToFloat64(h.d.metrics.versionInfo.WithLabelValues("models", "models", "v3", v3.digest)); got != 1 {
		t.Fatalf("version_info for v3 = %v", got)
	}
	if n := testutil.CollectAndCount(h.d.metrics.versionInfo); n != 1 {
		t.Fatalf("version_info has %d series, want 1", n)
	}
}

// TestCorruptBlobKeepsLastGoodVersion: a blob whose bytes do not match
// the requested digest never goes live; the last good version stays.
func TestCorruptBlobKeepsLastGoodVersion(t *testing.T) {
	h := newHarness(t, nil)
	v1, v2 := newVersion(t, "v1"), newVersion(t, "v2")
	h.repo.Add(v1.content)
	h.repo.AddAs(v2.digest, newVersion(t, "evil").content)
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)

	h.request("models", v2)
	s := h.waitStatus("models", "v2 failed twice", func(s DeploymentStatus) bool {
		return s.State == spec.DataFailed && s.ConsecutiveFailures >= 2
	})
	if s.Digest != v1.digest || s.Version != "v1" || !strings.Contains(s.Error, "digest mismatch") || s.Requested != v2.request("models") {
		t.Fatalf("status: %+v", s)
	}
	if got := h.readData("models", "a.txt"); got != "v1" {
		t.Fatalf("data = %q, want v1 still", got)
	}
	if got := h.versionsOnDisk(); !slices.Equal(got, []string{v1.digest[7:]}) {
		t.Fatalf("versions on disk: %v", got)
	}
	ds := s.DataStatus()
	if ds.State != spec.DataFailed || ds.Version != "v1" || !strings.HasPrefix(ds.String(), "failed/v1/"+v1.digest+"/") {
		t.Fatalf("DataStatus = %q", ds.String())
	}
	if _, err := spec.ParseDataStatus(ds.String()); err != nil {
		t.Fatalf("the controller could not parse %q: %v", ds.String(), err)
	}
}

// TestRejectedArchiveNeverGoesLive: hostile archives (one per rule) fail
// with a clear error and leave nothing behind.
func TestRejectedArchiveNeverGoesLive(t *testing.T) {
	tests := map[string]struct {
		content []byte
		wantErr string
	}{
		"symlink":   {content: tarWith(t, "link", '2'), wantErr: `archive entry "link": unsupported entry type: only directories and regular files are allowed (it is a symbolic link)`},
		"traversal": {content: tarWith(t, "../escape", '0'), wantErr: `archive entry "../escape": unsafe name: has a ".." component`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			v1 := newVersion(t, "v1")
			h.repo.Add(v1.content)
			bad := version{id: "bad", content: tc.content, digest: h.repo.Add(tc.content)}
			h.start()
			h.request("models", v1)
			h.waitLive("models", v1)
			h.request("models", bad)
			s := h.waitStatus("models", "bad version failed", func(s DeploymentStatus) bool { return s.State == spec.DataFailed })
			if !strings.Contains(s.Error, tc.wantErr) || s.Digest != v1.digest {
				t.Fatalf("status %+v, want error containing %q", s, tc.wantErr)
			}
			if got := h.versionsOnDisk(); !slices.Equal(got, []string{v1.digest[7:]}) {
				t.Fatalf("versions on disk: %v", got)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(h.location), "escape")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("something escaped: %v", err)
			}
			h.stop()
			left, err := os.ReadDir(filepath.Join(h.location, versionsDir))
			if err != nil || len(left) != 1 {
				t.Fatalf("after the failed attempts, versions/ holds %v (%v), want only v1", left, err)
			}
		})
	}
}

// TestOutageLeavesLiveData: while the repository is down the live data
// stays untouched; when it comes back, the sync completes.
func TestOutageLeavesLiveData(t *testing.T) {
	h := newHarness(t, nil)
	v1, v2 := newVersion(t, "v1"), newVersion(t, "v2")
	h.repo.Add(v1.content)
	h.repo.Add(v2.content)
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)
	h.repo.Down(true)
	h.request("models", v2)
	s := h.waitStatus("models", "failures during the outage", func(s DeploymentStatus) bool { return s.ConsecutiveFailures >= 3 })
	if s.Digest != v1.digest || !strings.Contains(s.Error, "503 Service Unavailable") || h.readData("models", "a.txt") != "v1" {
		t.Fatalf("status during the outage: %+v", s)
	}
	h.repo.Down(false)
	s = h.waitLive("models", v2)
	if s.ConsecutiveFailures != 0 || s.Error != "" || !s.FailingSince.IsZero() {
		t.Fatalf("status after the outage: %+v", s)
	}
}

// TestResumeAfterCut: the deployer resumes a download the repository cut,
// with a Range request, and the result verifies.
func TestResumeAfterCut(t *testing.T) {
	h := newHarness(t, nil)
	big := map[string]string{"blob.bin": strings.Repeat("0123456789abcdef", 1<<16)}
	content := tarFiles(t, big)
	v := version{id: "v1", content: content, digest: h.repo.Add(content)}
	h.repo.CutNextAfter(300_000)
	h.start()
	h.request("models", v)
	h.waitLive("models", v)
	reqs := h.repo.Requests()
	if len(reqs) != 2 || reqs[0].Range != "" || reqs[1].Range != "bytes=300000-" {
		t.Fatalf("requests: %+v", reqs)
	}
	if got := h.readData("models", "blob.bin"); got != big["blob.bin"] {
		t.Fatal("resumed data differs")
	}
}

// TestRefusesToReplaceUserData: LOCATION/NAME that is a real directory, or
// a symlink somewhere else, is never deleted or replaced.
func TestRefusesToReplaceUserData(t *testing.T) {
	tests := map[string]struct {
		setup   func(t *testing.T, location, userDir string)
		wantErr string
	}{
		"a directory": {
			setup: func(t *testing.T, location, userDir string) {
				if err := os.Rename(userDir, filepath.Join(location, "models")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "/models exists and is not a symlink to .autocrane/versions/; refusing to replace it (move it away)",
		},
		"a foreign symlink": {
			setup: func(t *testing.T, location, userDir string) {
				if err := os.Symlink(userDir, filepath.Join(location, "models")); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "/models is a symlink to \"",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			userDir := filepath.Join(t.TempDir(), "user")
			if err := os.Mkdir(userDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(userDir, "mine.txt"), []byte("keep me"), 0o644); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, h.location, userDir)
			v1 := newVersion(t, "v1")
			h.repo.Add(v1.content)
			h.start()
			h.request("models", v1)
			s := h.waitStatus("models", "failure", func(s DeploymentStatus) bool { return s.State == spec.DataFailed })
			if !strings.Contains(s.Error, tc.wantErr) || !strings.HasSuffix(s.Error, "refusing to replace it (move it away)") {
				t.Fatalf("error = %q, want %q", s.Error, tc.wantErr)
			}
			if b, err := os.ReadFile(filepath.Join(h.location, "models", "mine.txt")); err != nil || string(b) != "keep me" {
				t.Fatalf("user data changed: %q %v", b, err)
			}
		})
	}
}

// TestStateSurvivesRestart: a new Deployer on the same volume knows what
// is live, since when, and the previous version, and rolls back from disk.
func TestStateSurvivesRestart(t *testing.T) {
	h := newHarness(t, nil)
	v1, v2 := newVersion(t, "v1"), newVersion(t, "v2")
	h.repo.Add(v1.content)
	h.repo.Add(v2.content)
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)
	h.request("models", v2)
	before := h.waitLive("models", v2)
	h.stop()
	h.d.Close()

	d2, err := New(testOptions(t, h.repo, h.location))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	after, _ := d2.Status().Deployment("models")
	if after.State != spec.DataLive || after.Digest != v2.digest || after.Version != "v2" || !after.Since.Equal(before.Since) || after.Previous != v1.request("models") {
		t.Fatalf("after a restart: %+v, before: %+v", after, before)
	}
	h.d = d2
	requests := h.blobRequests()
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)
	if h.blobRequests() != requests {
		t.Fatal("the rollback after a restart downloaded")
	}
}

// TestRestartWithoutStateFile: the symlink alone says what is live.
func TestRestartWithoutStateFile(t *testing.T) {
	h := newHarness(t, nil)
	v1 := newVersion(t, "v1")
	h.repo.Add(v1.content)
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)
	h.stop()
	h.d.Close()
	if err := os.Remove(filepath.Join(h.location, stateFile)); err != nil {
		t.Fatal(err)
	}
	d2, err := New(testOptions(t, h.repo, h.location))
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	s, _ := d2.Status().Deployment("models")
	if s.Digest != v1.digest || s.Since.IsZero() || s.State != spec.DataLive {
		t.Fatalf("status from the symlink alone: %+v", s)
	}
}

// TestNewRequestCancelsStalledDownload: while a download stalls, a request
// for the previous version (on disk) goes live without waiting for it.
func TestNewRequestCancelsStalledDownload(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DownloadIdleTimeout = time.Hour })
	v1, v2 := newVersion(t, "v1"), newVersion(t, "v2")
	h.repo.Add(v1.content)
	h.repo.Add(v2.content)
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)
	h.repo.Stall(true)
	h.request("models", v2)
	h.waitStatus("models", "syncing v2", func(s DeploymentStatus) bool { return s.State == spec.DataSyncing })
	eventually(t, "the v2 download to start", func() (bool, string) { return h.blobRequests() == 2, "" })
	h.request("models", v1)
	s := h.waitLive("models", v1)
	if s.ConsecutiveFailures != 0 || s.Error != "" {
		t.Fatalf("status: %+v", s)
	}
}

// TestSharedVersionIsNotCollected: two deployments on the same digest
// share one extracted tree; moving one away keeps it for the other.
func TestSharedVersionIsNotCollected(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Deployments = []string{"models", "vocab"} })
	v1, v2, v3 := newVersion(t, "v1"), newVersion(t, "v2"), newVersion(t, "v3")
	for _, v := range []version{v1, v2, v3} {
		h.repo.Add(v.content)
	}
	h.start()
	h.set(spec.PrefixDataRequest+"models", v1.request("models"), spec.PrefixDataRequest+"vocab", v1.request("models"))
	h.waitLive("models", v1)
	h.waitLive("vocab", v1)
	h.request("models", v2)
	h.waitLive("models", v2)
	h.request("models", v3)
	h.waitLive("models", v3)
	// models keeps v3 and v2; vocab keeps v1.
	if got := h.readData("vocab", "a.txt"); got != "v1" {
		t.Fatalf("vocab data = %q", got)
	}
	eventually(t, "three versions on disk", func() (bool, string) {
		got := h.versionsOnDisk()
		return len(got) == 3, strings.Join(got, ",")
	})
}

// TestInvalidAndMissingRequests: a request that does not parse, or names
// another source, fails with a message saying so; the live data stays.
func TestInvalidAndMissingRequests(t *testing.T) {
	tests := map[string]struct {
		annotations []string
		wantState   spec.DataState
		wantErr     string
	}{
		"missing": {
			wantState: spec.DataSyncing,
		},
		"garbage": {
			annotations: []string{spec.PrefixDataRequest + "models", "nope"},
			wantState:   spec.DataFailed,
			wantErr:     `request.data.autocrane.io/models: "nope": want SOURCE/VERSION/DIGEST`,
		},
		"other source": {
			annotations: []string{spec.PrefixDataRequest + "models", "other/v1/sha256:" + strings.Repeat("a", 64), spec.PrefixData + "models", "models"},
			wantState:   spec.DataFailed,
			wantErr:     `request.data.autocrane.io/models asks for source "other", but data.autocrane.io/models says the deployment is fed from "models"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.start()
			h.set(append([]string{"unrelated", "x"}, tc.annotations...)...)
			s := h.waitStatus("models", string(tc.wantState), func(s DeploymentStatus) bool { return s.State == tc.wantState && s.Error == tc.wantErr })
			if s.Digest != "" || h.blobRequests() != 0 {
				t.Fatalf("status %+v, %d requests", s, h.blobRequests())
			}
		})
	}
}

func tarWith(t *testing.T, name string, typ byte) []byte {
	t.Helper()
	return rawTar(t, name, typ)
}
