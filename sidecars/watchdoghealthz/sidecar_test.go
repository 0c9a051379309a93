package watchdoghealthz

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitFor polls url until it answers code and body, with a generous
// deadline: the watcher sees the kubelet's writes asynchronously.
func waitFor(t *testing.T, url string, code int, body string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var gotCode int
	var gotBody string
	for time.Now().Before(deadline) {
		gotCode, gotBody = get(t, url)
		if gotCode == code && gotBody == body {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("GET %s = %d %q; want %d %q", url, gotCode, gotBody, code, body)
}

// TestSidecarOnLoopback plays the kubelet (podinfo.WriteLikeKubelet) and
// the prober (status annotations) against a real Sidecar on loopback, with
// a fake clock, through a whole canary life: waiting, warming up, healthy,
// an error, a recovery and always-healthy-after.
func TestSidecarOnLoopback(t *testing.T) {
	dir := t.TempDir()
	write := func(annotations map[string]string) {
		t.Helper()
		if err := podinfo.WriteLikeKubelet(dir, "annotations", annotations); err != nil {
			t.Fatal(err)
		}
	}
	write(pod("probe alive", probe, spec.KeyMinReadySeconds, "30"))
	clk := clocktesting.NewFakePassiveClock(t0)
	s, err := New(Options{
		AnnotationsFile: filepath.Join(dir, "annotations"),
		Config:          Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(300)},
		PollInterval:    50 * time.Millisecond,
		Clock:           clk,
		Log:             testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()

	waitFor(t, base+"/readyz", 200, "ok\n")
	waitFor(t, base+"/healthz", 503, `{"healthy":false,"reason":"waiting for a valid status of watchdog alive"}`+"\n")

	clk.SetTime(at(5 * time.Second))
	write(pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(3*time.Second), "ok")))
	waitFor(t, base+"/healthz", 503, `{"healthy":false,"reason":"error-free for 2s, less than min-ready-seconds (30s)","errorFreeFor":"2s"}`+"\n")

	clk.SetTime(at(33 * time.Second))
	waitFor(t, base+"/healthz", 200, `{"healthy":true,"reason":"error-free for 30s, at least min-ready-seconds (30s)","errorFreeFor":"30s"}`+"\n")

	clk.SetTime(at(41 * time.Second))
	write(pod("probe alive", probe, "status alive", status(spec.LevelError, at(40*time.Second), "500 Internal Server Error")))
	waitFor(t, base+"/healthz", 503, `{"healthy":false,"reason":"watchdog alive is error since 2030-01-02T03:04:45Z: 500 Internal Server Error"}`+"\n")

	clk.SetTime(at(60 * time.Second))
	write(pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(50*time.Second), "ok")))
	waitFor(t, base+"/healthz", 503, `{"healthy":false,"reason":"error-free for 10s, less than min-ready-seconds (30s)","errorFreeFor":"10s"}`+"\n")

	clk.SetTime(at(290 * time.Second))
	write(pod("probe alive", probe, "status alive", status(spec.LevelError, at(290*time.Second), "down")))
	waitFor(t, base+"/healthz", 503, `{"healthy":false,"reason":"watchdog alive is error since 2030-01-02T03:08:55Z: down"}`+"\n")

	clk.SetTime(at(300 * time.Second))
	waitFor(t, base+"/healthz", 200, `{"healthy":true,"reason":"always healthy: started 5m0s ago, always-healthy-after-seconds is 5m0s"}`+"\n")

	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`watchdoghealthz_healthz_answers_total{result="always_healthy"} 1`,
		`watchdoghealthz_healthz_answers_total{result="not_read"} 0`,
		`watchdoghealthz_annotations_updates_total 5`,
		`watchdoghealthz_error_free_seconds 0`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, result := range []string{"waiting", "warming_up", "healthy", "error"} {
		if !strings.Contains(metrics, `watchdoghealthz_healthz_answers_total{result="`+result+`"} `) ||
			strings.Contains(metrics, `watchdoghealthz_healthz_answers_total{result="`+result+`"} 0`+"\n") {
			t.Errorf("/metrics counts no %s answer", result)
		}
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		conn.Close()
		t.Fatal("the port still accepts connections after Run returned")
	}
}

// TestBeforeTheFirstRead uses the handler alone: nothing has read the file.
func TestBeforeTheFirstRead(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	s, err := New(Options{AnnotationsFile: filepath.Join(t.TempDir(), "missing"), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/readyz":  "the annotations file was not read yet\n",
		"/healthz": `{"healthy":false,"reason":"the annotations file was not read yet"}` + "\n",
	} {
		if code, body := get(t, srv.URL+path); code != 503 || body != want {
			t.Errorf("GET %s = %d %q; want 503 %q", path, code, body, want)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
}

// TestAlwaysHealthyWithoutAFile checks that always-healthy-after works even
// when the annotations file never appears.
func TestAlwaysHealthyWithoutAFile(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	s, err := New(Options{AnnotationsFile: filepath.Join(t.TempDir(), "missing"), Config: Config{MinReady: 10 * time.Second, AlwaysHealthyAfter: d(20)}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	clk.SetTime(at(19 * time.Second))
	if code, _ := get(t, srv.URL+"/healthz"); code != 503 {
		t.Fatalf("at 19s: %d, want 503", code)
	}
	clk.SetTime(at(20 * time.Second))
	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != `{"healthy":true,"reason":"always healthy: started 20s ago, always-healthy-after-seconds is 20s"}`+"\n" {
		t.Fatalf("at 20s: %d %q, want 200", code, body)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"zero":                 {},
		"the largest":          {opts: Options{Config: Config{MinReady: 86400 * time.Second, AlwaysHealthyAfter: d(86400)}}},
		"always equal to min":  {opts: Options{Config: Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(30)}}},
		"negative min":         {opts: Options{Config: Config{MinReady: -time.Second}}, wantErr: "min ready -1s: must be from 0s to 24h0m0s"},
		"min too long":         {opts: Options{Config: Config{MinReady: 86401 * time.Second}}, wantErr: "min ready 24h0m1s: must be from 0s to 24h0m0s"},
		"always too long":      {opts: Options{Config: Config{AlwaysHealthyAfter: d(86401)}}, wantErr: "always healthy after 24h0m1s: must be from 0s to 24h0m0s"},
		"always less than min": {opts: Options{Config: Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(29)}}, wantErr: "always healthy after 29s: must not be less than min ready (30s), or the canary would never gate"},
		"negative poll":        {opts: Options{PollInterval: -1}, wantErr: "poll interval -1ns: must not be negative"},
		"negative shutdown":    {opts: Options{ShutdownTimeout: -time.Second}, wantErr: "shutdown timeout -1s: must not be negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestMetricsLint runs Prometheus' linter over the sidecar's metrics.
func TestMetricsLint(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(s.metrics.registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
