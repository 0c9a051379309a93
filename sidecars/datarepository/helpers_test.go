package datarepository

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

// testLogger sends the server's logs to the test log.
func testLogger(t testing.TB) logr.Logger {
	return funcr.New(func(prefix, args string) { t.Log(prefix, args) }, funcr.Options{Verbosity: 1})
}

// running is a Server serving on a loopback port.
type running struct {
	srv    *Server
	url    string
	client *Client
	cancel context.CancelFunc
	done   chan error
}

// start runs a server with opts on 127.0.0.1:0 and waits until it is
// ready. It is stopped at the end of the test, unless stop is called first.
func start(t *testing.T, opts Options) *running {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	if (opts.Logger == logr.Logger{}) {
		opts.Logger = testLogger(t)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	r := &running{srv: srv, url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	r.client = &Client{BaseURL: r.url, HTTP: &http.Client{Timeout: time.Minute}}
	go func() { r.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { r.stop(t) })
	waitFor(t, "the server to be ready", func() bool {
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// stop ends the server and checks it stopped cleanly. Safe to call twice.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Error("the server did not stop")
	}
}

// waitFor polls cond with a generous deadline: a condition, never a sleep,
// synchronizes the test.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitVersions waits until source name has n versions and returns it.
func (r *running) waitVersions(t *testing.T, name string, n int) SourceStatus {
	t.Helper()
	var st SourceStatus
	waitFor(t, fmt.Sprintf("%d versions of %s", n, name), func() bool {
		var err error
		st, err = r.client.Source(t.Context(), name)
		return err == nil && len(st.Versions) == n
	})
	return st
}

// waitSynced waits until source name's last check ended after since.
func (r *running) waitSynced(t *testing.T, name string, since time.Time) SourceStatus {
	t.Helper()
	var st SourceStatus
	waitFor(t, "a check of "+name, func() bool {
		var err error
		st, err = r.client.Source(t.Context(), name)
		return err == nil && st.LastSync != nil && st.LastSync.After(since)
	})
	return st
}

// writeTree writes files (path -> content) under root.
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// metricLine returns the value of a metric line that starts with prefix.
func metricValue(t *testing.T, r *running, token, prefix string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.url+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for line := range strings.SplitSeq(b.String(), "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimPrefix(line, prefix+" ")
		}
	}
	return ""
}

// recorder records the delays the runners wait, in place of jitter.
type recorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *recorder) jitter(d time.Duration) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delays = append(r.delays, d)
	return d
}

func (r *recorder) get() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.delays...)
}
