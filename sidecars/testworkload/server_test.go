package testworkload

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
)

// step is one request, made after moving the fake clock by advance.
type step struct {
	advance  time.Duration
	method   string
	path     string
	wantCode int
	wantBody string
}

func TestServerScenarios(t *testing.T) {
	tests := map[string][]step{
		"ping answers pong": {
			{method: "GET", path: "/ping", wantCode: 200, wantBody: "pong"},
			{method: "HEAD", path: "/ping", wantCode: 200, wantBody: ""},
			{method: "POST", path: "/ping", wantCode: 405, wantBody: "Method Not Allowed\n"},
		},
		"healthy at start": {
			{method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"fail for 30s, then healthy again on its own": {
			{method: "POST", path: "/fail?for=30s", wantCode: 200,
				wantBody: `{"mode":"failing","since":"2030-01-02T03:04:05Z","until":"2030-01-02T03:04:35Z","message":"failing for 30s (since 2030-01-02T03:04:05Z, until 2030-01-02T03:04:35Z)"}` + "\n"},
			{advance: 29 * time.Second, method: "GET", path: "/watchdog", wantCode: 500,
				wantBody: `{"level":"error","message":"failing for 30s (since 2030-01-02T03:04:05Z, until 2030-01-02T03:04:35Z)"}` + "\n"},
			{advance: time.Second, method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"fail until recovered": {
			{method: "POST", path: "/fail", wantCode: 200,
				wantBody: `{"mode":"failing","since":"2030-01-02T03:04:05Z","message":"failing until POST /recover (since 2030-01-02T03:04:05Z)"}` + "\n"},
			{advance: 1000 * time.Hour, method: "GET", path: "/watchdog", wantCode: 500,
				wantBody: `{"level":"error","message":"failing until POST /recover (since 2030-01-02T03:04:05Z)"}` + "\n"},
			{method: "POST", path: "/recover", wantCode: 200,
				wantBody: `{"mode":"ok","since":"2030-02-12T19:04:05Z","message":"ok"}` + "\n"},
			{method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"warning answers 200 with level warning": {
			{method: "POST", path: "/warn?for=1m", wantCode: 200,
				wantBody: `{"mode":"warning","since":"2030-01-02T03:04:05Z","until":"2030-01-02T03:05:05Z","message":"warning for 1m0s (since 2030-01-02T03:04:05Z, until 2030-01-02T03:05:05Z)"}` + "\n"},
			{method: "GET", path: "/watchdog", wantCode: 200,
				wantBody: `{"level":"warning","message":"warning for 1m0s (since 2030-01-02T03:04:05Z, until 2030-01-02T03:05:05Z)"}` + "\n"},
			{advance: time.Minute, method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"a later change replaces the earlier one": {
			{method: "POST", path: "/fail?for=10s", wantCode: 200},
			{method: "POST", path: "/warn", wantCode: 200},
			{advance: time.Hour, method: "GET", path: "/watchdog", wantCode: 200,
				wantBody: `{"level":"warning","message":"warning until POST /recover (since 2030-01-02T03:04:05Z)"}` + "\n"},
		},
		"recover ends a warning": {
			{method: "POST", path: "/warn", wantCode: 200},
			{method: "POST", path: "/recover", wantCode: 200},
			{method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"bad durations are refused and change nothing": {
			{method: "POST", path: "/fail?for=abc", wantCode: 400, wantBody: `for="abc": not a duration such as 30s or 5m` + "\n"},
			{method: "POST", path: "/warn?for=-1s", wantCode: 400, wantBody: `for="-1s": must be more than 0s and at most 168h0m0s` + "\n"},
			{method: "POST", path: "/fail?for=%zz", wantCode: 400, wantBody: `bad query: invalid URL escape "%zz"` + "\n"},
			{method: "POST", path: "/recover?for=1s", wantCode: 400, wantBody: "POST /recover takes no for=\n"},
			{method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"state changes only by POST": {
			{method: "GET", path: "/fail", wantCode: 405, wantBody: "Method Not Allowed\n"},
			{method: "PUT", path: "/warn", wantCode: 405, wantBody: "Method Not Allowed\n"},
			{method: "GET", path: "/recover", wantCode: 405, wantBody: "Method Not Allowed\n"},
			{method: "POST", path: "/watchdog", wantCode: 405, wantBody: "Method Not Allowed\n"},
			{method: "GET", path: "/watchdog", wantCode: 200, wantBody: `{"level":"info","message":"ok"}` + "\n"},
		},
		"unknown paths": {
			{method: "GET", path: "/nope", wantCode: 404, wantBody: "404 page not found\n"},
		},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(t0)
			s, err := New(Options{Clock: clk, Log: testr.New(t)})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			for i, st := range steps {
				clk.SetTime(clk.Now().Add(st.advance))
				code, body, _ := do(t, srv.Client(), st.method, srv.URL+st.path)
				if code != st.wantCode || (st.wantBody != "" || st.method == "HEAD") && body != st.wantBody {
					t.Fatalf("step %d: %s %s = %d %q; want %d %q", i, st.method, st.path, code, body, st.wantCode, st.wantBody)
				}
			}
		})
	}
}

func do(t *testing.T, c *http.Client, method, url string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestAllowHeaderOn405(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	_, _, h := do(t, srv.Client(), "GET", srv.URL+"/fail")
	if got := h.Get("Allow"); got != "POST" {
		t.Fatalf("Allow = %q, want POST", got)
	}
}

func TestRedirectMode(t *testing.T) {
	s, err := New(Options{RedirectWatchdogTo: "http://127.0.0.1:1/elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	code, _, h := do(t, c, "GET", srv.URL+"/watchdog")
	if code != http.StatusFound || h.Get("Location") != "http://127.0.0.1:1/elsewhere" {
		t.Fatalf("GET /watchdog = %d Location %q; want 302 to the target", code, h.Get("Location"))
	}
	if code, body, _ := do(t, c, "GET", srv.URL+"/ping"); code != 200 || body != "pong" {
		t.Fatalf("GET /ping = %d %q: the redirect must only concern /watchdog", code, body)
	}
}

func TestWatchdogBodyBytes(t *testing.T) {
	const size = 5<<20 + 3
	tests := map[string]struct {
		fail     bool
		wantCode int
		wantHead string
	}{
		"healthy": {wantCode: 200, wantHead: `{"level":"info","message":"ok"}`},
		"failing": {fail: true, wantCode: 500, wantHead: `{"level":"error","message":"failing until POST /recover`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := New(Options{WatchdogBodyBytes: size})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			if tc.fail {
				do(t, srv.Client(), "POST", srv.URL+"/fail")
			}
			code, body, h := do(t, srv.Client(), "GET", srv.URL+"/watchdog")
			if code != tc.wantCode || len(body) != size || h.Get("Content-Length") != "5242883" {
				t.Fatalf("GET /watchdog = %d, %d bytes, Content-Length %q; want %d, %d bytes", code, len(body), h.Get("Content-Length"), tc.wantCode, size)
			}
			answer := strings.TrimRight(body, " ")
			if !strings.HasPrefix(body, tc.wantHead) || !strings.HasSuffix(answer, "}\n") || strings.Count(answer, "\n") != 1 {
				t.Fatalf("body = %q...; want %q then spaces", body[:80], tc.wantHead)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"zero":          {},
		"redirect":      {opts: Options{RedirectWatchdogTo: "https://example.invalid/x"}},
		"body":          {opts: Options{WatchdogBodyBytes: 1 << 30}},
		"relative":      {opts: Options{RedirectWatchdogTo: "/elsewhere"}, wantErr: `redirect target "/elsewhere": want an absolute http:// or https:// URL`},
		"other scheme":  {opts: Options{RedirectWatchdogTo: "ftp://h/x"}, wantErr: `redirect target "ftp://h/x": want an absolute http:// or https:// URL`},
		"negative body": {opts: Options{WatchdogBodyBytes: -1}, wantErr: "watchdog body bytes -1: must not be negative"},
		"both modes": {opts: Options{RedirectWatchdogTo: "http://h/", WatchdogBodyBytes: 10},
			wantErr: "a redirect target and a watchdog body size exclude each other: a redirect has no watchdog body"},
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

func TestMetrics(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	s, err := New(Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := srv.Client()
	do(t, c, "GET", srv.URL+"/ping")
	do(t, c, "GET", srv.URL+"/ping")
	do(t, c, "POST", srv.URL+"/fail?for=10s")
	do(t, c, "GET", srv.URL+"/watchdog")
	do(t, c, "GET", srv.URL+"/fail")
	do(t, c, "GET", srv.URL+"/wp-login.php")
	_, body, _ := do(t, c, "GET", srv.URL+"/metrics")
	for _, want := range []string{
		`testworkload_http_requests_total{code="200",path="/ping"} 2`,
		`testworkload_http_requests_total{code="200",path="/fail"} 1`,
		`testworkload_http_requests_total{code="405",path="/fail"} 1`,
		`testworkload_http_requests_total{code="500",path="/watchdog"} 1`,
		`testworkload_http_requests_total{code="200",path="/watchdog"} 0`,
		`testworkload_http_requests_total{code="404",path="other"} 1`,
		`testworkload_watchdog_mode{mode="failing"} 1`,
		`testworkload_watchdog_mode{mode="ok"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	clk.SetTime(t0.Add(10 * time.Second))
	_, body, _ = do(t, c, "GET", srv.URL+"/metrics")
	if !strings.Contains(body, `testworkload_watchdog_mode{mode="ok"} 1`+"\n") {
		t.Errorf("after the failure expired, /metrics does not show mode ok")
	}
}

// TestRunShutsDownGracefully starts Run on loopback, begins a large
// response, ends the context, and checks that the response still arrives
// whole, that Run returns nil and that the port is closed.
func TestRunShutsDownGracefully(t *testing.T) {
	const size = 64 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, ln, Options{WatchdogBodyBytes: size, Log: testr.New(t)}) }()

	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/watchdog", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	cancel()
	rest, err := io.Copy(io.Discard, resp.Body)
	if err != nil || rest+16 != size {
		t.Fatalf("after shutdown began, read %d more bytes (%v); want %d", rest, err, size-16)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	conn, err := net.Dial("tcp", addr)
	if err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after Run returned", addr)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("dial after shutdown: %v", err)
	}
}

// TestMetricsLint runs Prometheus' linter over the workload's metrics.
func TestMetricsLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(newMetrics(func() State { return State{Mode: ModeOK} }).registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
