package datadeployer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"github.com/autocrane/autocrane/sidecars/datadeployer/archive"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/autocrane/autocrane/sidecars/datadeployer/repotest"
	"github.com/autocrane/autocrane/spec"
)

// version is a data version a test serves: every file holds its id, so a
// reader can tell versions apart.
type version struct {
	id      string
	content []byte
	digest  string
}

func newVersion(t testing.TB, id string) version {
	t.Helper()
	content := repotest.Tar(t, map[string]string{"a.txt": id, "sub/b.txt": id, "sub/deeper/c.txt": id})
	return version{id: id, content: content, digest: repotest.Digest(content)}
}

func (v version) request(source string) string { return source + "/" + v.id + "/" + v.digest }

// harness runs a Deployer against a repotest.Server.
type harness struct {
	t           *testing.T
	repo        *repotest.Server
	location    string
	d           *Deployer
	mu          sync.Mutex
	annotations map[string]string
	cancel      context.CancelFunc
	done        chan struct{}
}

func testOptions(t *testing.T, repo *repotest.Server, location string) Options {
	return Options{
		RepositoryURL: repo.URL,
		Location:      location,
		Deployments:   []string{"models"},
		RetryMin:      time.Millisecond,
		RetryMax:      10 * time.Millisecond,
		Log:           testr.NewWithOptions(t, testr.Options{Verbosity: 1}),
	}
}

func newHarness(t *testing.T, configure func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, repo: repotest.New(t), location: t.TempDir(), annotations: map[string]string{}}
	opts := testOptions(t, h.repo, h.location)
	if configure != nil {
		configure(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	t.Cleanup(func() {
		h.stop()
		d.Close()
	})
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(h.t.Context())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.d.Run(ctx)
	}()
}

func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
		h.cancel = nil
	}
}

// set changes annotations (empty value: delete) and hands them over.
func (h *harness) set(kv ...string) {
	h.mu.Lock()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(h.annotations, kv[i])
		} else {
			h.annotations[kv[i]] = kv[i+1]
		}
	}
	a := maps.Clone(h.annotations)
	h.mu.Unlock()
	h.d.SetAnnotations(a)
}

func (h *harness) request(name string, v version) {
	h.set(spec.PrefixDataRequest+name, v.request("models"))
}

// eventually polls cond until it holds, with a generous deadline.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, got := cond()
		if ok {
			return
		}
		last = got
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func (h *harness) waitStatus(name, what string, cond func(DeploymentStatus) bool) DeploymentStatus {
	h.t.Helper()
	var got DeploymentStatus
	eventually(h.t, what, func() (bool, string) {
		got, _ = h.d.Status().Deployment(name)
		return cond(got), fmt.Sprintf("%+v", got)
	})
	return got
}

func (h *harness) waitLive(name string, v version) DeploymentStatus {
	h.t.Helper()
	return h.waitStatus(name, name+" live on "+v.id, func(s DeploymentStatus) bool {
		return s.State == spec.DataLive && s.Digest == v.digest && s.Version == v.id
	})
}

// readData reads a file of a deployment through LOCATION/NAME.
func (h *harness) readData(name, file string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.location, name, file))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// versionsOnDisk lists the published versions in .autocrane/versions.
func (h *harness) versionsOnDisk() []string {
	h.t.Helper()
	es, err := os.ReadDir(filepath.Join(h.location, versionsDir))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		// Work directories come and go while a failing sync is retried.
		if isHex64(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

func (h *harness) blobRequests() int {
	n := 0
	for _, r := range h.repo.Requests() {
		if strings.HasPrefix(r.Path, "/v1/blobs/") {
			n++
		}
	}
	return n
}

func tarFiles(t testing.TB, files map[string]string) []byte { return repotest.Tar(t, files) }

// rawTar is an archive with one entry of type typ, plus a regular file.
func rawTar(t testing.TB, name string, typ byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "ok.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte("ok"))
	hdr := &tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Linkname: "/etc"}
	if typ == tar.TypeReg {
		hdr.Size, hdr.Linkname = 4, ""
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if typ == tar.TypeReg {
		_, _ = tw.Write([]byte("evil"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testLimits() archive.Limits { return archive.DefaultLimits() }

func (h *harness) notifications(kind, result string) float64 {
	return testutil.ToFloat64(h.d.metrics.notifications.WithLabelValues(kind, result))
}

func digestOf(content []byte) string { return repotest.Digest(content) }
