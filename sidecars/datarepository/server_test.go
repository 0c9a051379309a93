package datarepository

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

func blobBytes(t *testing.T, r *running, digest string) []byte {
	t.Helper()
	body, size, err := r.client.OpenBlob(t.Context(), digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != size {
		t.Fatalf("read %d bytes, size %d", len(data), size)
	}
	sum := sha256.Sum256(data)
	if "sha256:"+hex.EncodeToString(sum[:]) != digest {
		t.Fatal("blob content does not match its digest")
	}
	return data
}

func tarNames(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func TestDirSourceEndToEnd(t *testing.T) {
	data := t.TempDir()
	writeTree(t, data, map[string]string{"a.txt": "one", "sub/b.txt": "bee"})
	r := start(t, Options{Sources: []string{"local=dir:" + data}, PollInterval: time.Hour})

	r.waitVersions(t, "local", 1)
	st := r.waitSynced(t, "local", time.Time{})
	v := st.Versions[0]
	if err := spec.ValidateVersionID(v.ID); err != nil || !strings.HasSuffix(v.ID, "-"+strings.TrimPrefix(v.Digest, "sha256:")[:12]) {
		t.Fatalf("version %+v: %v", v, err)
	}
	if st.Kind != "dir" || st.Location != data || st.LastError != "" || v.Revision != v.Digest {
		t.Fatalf("status %+v", st)
	}
	got := tarNames(t, blobBytes(t, r, v.Digest))
	want := map[string]string{"a.txt": "one", "sub/": "", "sub/b.txt": "bee"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("blob holds %v, want %v", got, want)
	}

	// A sync with the same content makes no version.
	before := *st.LastSync
	if err := r.client.Sync(t.Context(), "local"); err != nil {
		t.Fatal(err)
	}
	if st := r.waitSynced(t, "local", before); len(st.Versions) != 1 {
		t.Fatalf("identical content made a version: %+v", st.Versions)
	}
	// A change and a sync (a push webhook) make one.
	writeTree(t, data, map[string]string{"a.txt": "two"})
	if err := r.client.Sync(t.Context(), "local"); err != nil {
		t.Fatal(err)
	}
	st = r.waitVersions(t, "local", 2)
	if st.Versions[0].ID >= st.Versions[1].ID || st.Latest().Digest == v.Digest {
		t.Fatalf("versions %+v", st.Versions)
	}
	if n := metricValue(t, r, "", `autocrane_datarepository_syncs_total{result="new_version",source="local"}`); n != "2" {
		t.Fatalf("new_version syncs = %q, want 2", n)
	}
	if err := r.client.Sync(t.Context(), "nope"); !IsNotFound(err) {
		t.Fatalf("sync of an unknown source: %v", err)
	}
}

func TestGitSourceEndToEnd(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + repo, "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	writeTree(t, repo, map[string]string{"model.bin": "m1"})
	git("add", "-A")
	git("commit", "-q", "-m", "1")
	location := "git:file://" + repo + "#main"

	// Not allowed: the source shows why, and the others are not affected.
	r := start(t, Options{Sources: []string{"m=" + location}, PollInterval: time.Hour})
	st := r.waitSynced(t, "m", time.Time{})
	if st.LastError != "git transport file:// is plaintext or local; allow it for this source with --allow-insecure" {
		t.Fatalf("lastError %q", st.LastError)
	}
	r.stop(t)

	r = start(t, Options{Sources: []string{"m=" + location}, AllowInsecure: []string{"m"}, PollInterval: time.Hour})
	st = r.waitVersions(t, "m", 1)
	if got := tarNames(t, blobBytes(t, r, st.Versions[0].Digest)); got["model.bin"] != "m1" {
		t.Fatalf("blob %v", got)
	}
	if st.Location != "file://"+repo+"#main" {
		t.Fatalf("location %q", st.Location)
	}
	writeTree(t, repo, map[string]string{"model.bin": "m2"})
	git("commit", "-q", "-am", "2")
	r.client.Sync(t.Context(), "m")
	st = r.waitVersions(t, "m", 2)
	if got := tarNames(t, blobBytes(t, r, st.Latest().Digest)); got["model.bin"] != "m2" {
		t.Fatalf("blob %v", got)
	}
}

// TestFailingSourcesDoNotBlockOthers runs a source that hangs (an http
// server that never answers) and one that fails next to a working one.
func TestFailingSourcesDoNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	data := t.TempDir()
	writeTree(t, data, map[string]string{"f": "1"})
	r := start(t, Options{
		Sources:       []string{"hang=http:" + hang.URL + "/f.tgz", "broken=dir:/nonexistent/dir", "good=dir:" + data},
		AllowInsecure: []string{"*"}, PollInterval: time.Hour, SyncTimeout: time.Hour,
	})
	st := r.waitVersions(t, "good", 1)
	writeTree(t, data, map[string]string{"f": "2"})
	r.client.Sync(t.Context(), "good")
	r.waitVersions(t, "good", 2)
	broken := r.waitSynced(t, "broken", time.Time{})
	if !strings.Contains(broken.LastError, "/nonexistent/dir") {
		t.Fatalf("broken source's error %q", broken.LastError)
	}
	hung, _ := r.client.Source(t.Context(), "hang")
	if hung.LastSync != nil {
		t.Fatalf("the hanging source finished a check: %+v", hung)
	}
	list, err := r.client.Sources(t.Context())
	if err != nil || len(list) != 3 || list[0].Name != "broken" || list[1].Name != "good" {
		t.Fatalf("Sources: %v, %+v", err, list)
	}
	_ = st
	// Stopping the server kills the hanging check (bounded shutdown).
	r.stop(t)
}

func TestBackoffAndPollDelays(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 15, 4, 5, 0, time.UTC))
	rec := &recorder{}
	missing := filepath.Join(t.TempDir(), "later")
	r := start(t, Options{Sources: []string{"s=dir:" + missing}, Clock: clk, jitter: rec.jitter,
		PollInterval: time.Minute, ErrorBackoff: 10 * time.Second, MaxErrorBackoff: 30 * time.Second})
	// Step the fake clock until the runner has waited n delays.
	advance := func(n int) {
		waitFor(t, fmt.Sprintf("%d delays", n), func() bool {
			if len(rec.get()) >= n {
				return true
			}
			clk.Step(time.Second)
			return false
		})
	}
	advance(4)
	if got, want := rec.get()[:4], []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second}; !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	writeTree(t, missing, map[string]string{"x": "x"})
	n := len(rec.get())
	advance(n + 1)
	if got := rec.get()[n]; got != time.Minute {
		t.Fatalf("delay after a success %v, want the poll interval", got)
	}
	st := r.waitVersions(t, "s", 1)
	if !strings.HasPrefix(st.Versions[0].ID, "20261121t15") {
		t.Fatalf("version id %q does not come from the fake clock", st.Versions[0].ID)
	}
}

func TestBackoff(t *testing.T) {
	tests := map[string]struct {
		n    int
		want time.Duration
	}{
		"first":  {n: 1, want: 10 * time.Second},
		"second": {n: 2, want: 20 * time.Second},
		"fifth":  {n: 5, want: 160 * time.Second},
		"capped": {n: 100, want: 10 * time.Minute},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := backoff(tc.n, 10*time.Second, 10*time.Minute); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	for range 1000 {
		if d := jitter(time.Minute); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("jitter(1m) = %v, outside ±10%%", d)
		}
	}
}
