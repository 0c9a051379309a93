package watchdog

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

const (
	testUID = types.UID("0b5e1f5c-uid")
	// generous is a timeout no healthy test probe comes near; tests never
	// measure time, it only keeps a broken test from hanging.
	generous = 30 * time.Second
	// secret stands for response bytes that must never reach a message.
	secret = "SECRET-7f3a"
)

var proberNow = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// fakePods answers the pod's current IP; next, when set, answers every
// call after the first (the IP changed between the check and the dial).
type fakePods struct {
	ip    string
	next  *string
	calls atomic.Int32
}

func (f *fakePods) CurrentIP(uid types.UID) (string, bool) {
	n := f.calls.Add(1)
	if uid != testUID {
		return "", false
	}
	if n > 1 && f.next != nil {
		return *f.next, *f.next != ""
	}
	return f.ip, f.ip != ""
}

// dialRecorder is a ProberOptions.Dial that records each address dialled
// and counts the bytes the prober reads.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
	read  atomic.Int64
}

func (d *dialRecorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, read: &d.read}, nil
}

func (d *dialRecorder) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// newProber is a prober whose pod is at ip, dialling through a recorder,
// with a fake clock.
func newProber(t *testing.T, pods *fakePods) (*Prober, *dialRecorder) {
	t.Helper()
	rec := &dialRecorder{}
	return NewProber(pods, ProberOptions{Dial: rec.dial, Clock: clocktesting.NewFakePassiveClock(proberNow)}), rec
}

// targetFor is the target of watchdog web at a server's address.
func targetFor(t *testing.T, serverURL, path string) Target {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return Target{
		UID: testUID, Namespace: "team", Pod: "web-0",
		Probe:   spec.Probe{Name: "web", Scheme: u.Scheme, Port: port, Path: path},
		IP:      u.Hostname(),
		Timeout: generous,
	}
}

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestProbeAnswers(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    Result
	}{
		{name: "200 is info",
			handler: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") },
			want:    Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200"}},
		{name: "204 is info",
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) },
			want:    Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 204"}},
		{name: "500 fails",
			handler: func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusInternalServerError) },
			want:    Result{Message: "HTTP 500"}},
		{name: "404 fails",
			handler: http.NotFound,
			want:    Result{Message: "HTTP 404"}},
		{name: "a warning level is a healthy warning",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprint(w, `{"level":"warning","message":"disk 91%"}`)
			},
			want: Result{OK: true, Level: spec.LevelWarning, Message: "HTTP 200, level warning"}},
		{name: "an error level fails",
			handler: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"level":"error"}`) },
			want:    Result{Message: "HTTP 200, level error"}},
		{name: "an info level is info",
			handler: func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"level":"info"}`) },
			want:    Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200"}},
		{name: "a level on a 500 does not heal it",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprint(w, `{"level":"info"}`)
			},
			want: Result{Message: "HTTP 503"}},
		{name: "a redirect fails",
			handler: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) },
			want:    Result{Message: "HTTP 302 (redirects are not followed)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userAgents := make(chan string, 1)
			s := serve(t, func(w http.ResponseWriter, r *http.Request) {
				userAgents <- r.Header.Get("User-Agent")
				tt.handler(w, r)
			})
			target := targetFor(t, s.URL, "/healthz")
			p, _ := newProber(t, &fakePods{ip: target.IP})
			r, skipped := p.Probe(t.Context(), target)
			tt.want.At = proberNow
			if skipped || r != tt.want {
				t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, tt.want)
			}
			if ua := <-userAgents; ua != "autocrane-prober" {
				t.Errorf("User-Agent %q", ua)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	warning := Result{OK: true, Level: spec.LevelWarning, Message: "HTTP 200, level warning", At: proberNow}
	info := Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200", At: proberNow}
	tests := []struct {
		code int
		body string
		want Result
	}{
		{200, "", info},
		{200, `{"level":"warning"}`, warning},
		{200, `{"status":"ok","level":"warning","checks":[1,2]}`, warning},
		{200, `{"level":"WARNING"}`, info},
		{200, `{"level":"unknown"}`, info},
		{200, `{"level":3}`, info},
		{200, `{"level":"warning"`, info},
		{200, `["warning"]`, info},
		{200, `level: warning`, info},
		{200, `{"level":"warning"}` + strings.Repeat(" ", MaxBodyBytes-19), warning},
		// A body past the limit was cut: it is not read for a level.
		{200, `{"level":"warning"}` + strings.Repeat(" ", MaxBodyBytes-18), info},
		{299, `{"level":"warning"}`, Result{OK: true, Level: spec.LevelWarning, Message: "HTTP 299, level warning", At: proberNow}},
		{101, "", Result{Message: "HTTP 101", At: proberNow}},
		{301, "", Result{Message: "HTTP 301 (redirects are not followed)", At: proberNow}},
		{399, "", Result{Message: "HTTP 399 (redirects are not followed)", At: proberNow}},
		{400, `{"level":"info"}`, Result{Message: "HTTP 400", At: proberNow}},
		{599, "", Result{Message: "HTTP 599", At: proberNow}},
	}
	for _, tt := range tests {
		if got := classify(tt.code, []byte(tt.body), proberNow); got != tt.want {
			t.Errorf("classify(%d, %.40q) = %+v, want %+v", tt.code, tt.body, got, tt.want)
		}
	}
}

func TestDescribeError(t *testing.T) {
	const timeout = 2 * time.Second
	syscallErr := func(errno syscall.Errno) error {
		return &url.Error{Op: "Get", URL: "http://x/" + secret, Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}}
	}
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "no answer within 2s"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "no answer within 2s"},
		{&url.Error{Op: "Get", URL: "u", Err: os.ErrDeadlineExceeded}, "no answer within 2s"},
		{os.ErrDeadlineExceeded, "no answer within 2s"},
		{syscallErr(syscall.ECONNREFUSED), "connection refused"},
		{syscallErr(syscall.ECONNRESET), "connection reset"},
		{io.ErrUnexpectedEOF, "connection reset"},
		{fmt.Errorf("read: %w", io.EOF), "connection reset"},
		{syscallErr(syscall.EHOSTUNREACH), "host unreachable"},
		{syscallErr(syscall.ENETUNREACH), "host unreachable"},
		{tls.RecordHeaderError{Msg: secret}, "TLS handshake failed"},
		{&url.Error{Op: "Get", URL: "u", Err: http.ErrSchemeMismatch}, "TLS handshake failed"},
		{errors.New(secret), "request failed"},
		{fmt.Errorf("malformed HTTP response %q", secret), "request failed"},
	}
	for _, tt := range tests {
		if got := describeError(tt.err, timeout); got != tt.want {
			t.Errorf("describeError(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestProbeRedirectIsNotFollowed(t *testing.T) {
	var otherHits atomic.Int32
	other := serve(t, func(http.ResponseWriter, *http.Request) { otherHits.Add(1) })
	pod := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/healthz", http.StatusFound)
	})
	target := targetFor(t, pod.URL, "/healthz")
	p, rec := newProber(t, &fakePods{ip: target.IP})
	for range 3 {
		r, skipped := p.Probe(t.Context(), target)
		if skipped || r.OK || r.Message != "HTTP 302 (redirects are not followed)" {
			t.Fatalf("Probe() = %+v, skipped %v; want a redirect failure", r, skipped)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	podAddr := pod.Listener.Addr().String()
	for _, addr := range rec.dialled() {
		if addr != podAddr {
			t.Errorf("dialled %s; only the pod %s may be dialled", addr, podAddr)
		}
	}
	if len(rec.dialled()) == 0 {
		t.Error("the pod was never dialled")
	}
}

func TestProbeReadsABoundedBody(t *testing.T) {
	const total = 256 << 20 // far more than any socket buffer holds
	type written struct {
		n   int64
		err error
	}
	done := make(chan written, 1)
	s := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(total))
		chunk := []byte(strings.Repeat(`{"level":"warning"}`, 64<<10/19))
		var n int64
		var err error
		for n < total && err == nil {
			var k int
			k, err = w.Write(chunk[:min(int64(len(chunk)), total-n)])
			n += int64(k)
		}
		done <- written{n, err}
	})
	target := targetFor(t, s.URL, "/big")
	p, rec := newProber(t, &fakePods{ip: target.IP})
	r, skipped := p.Probe(t.Context(), target)
	// The body is cut, so its level is not read: a plain 200.
	if want := (Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200", At: proberNow}); skipped || r != want {
		t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, want)
	}
	var w written
	select {
	case w = <-done:
	case <-time.After(generous):
		t.Fatal("the server is still writing: the prober kept the connection open")
	}
	if w.err == nil || w.n >= total {
		t.Errorf("the server wrote %d of %d bytes, error %v; want its write cut short", w.n, total, w.err)
	}
	if n := rec.read.Load(); n > MaxBodyBytes+32<<10 {
		t.Errorf("the prober read %d bytes for a %d-byte limit", n, MaxBodyBytes)
	}
}

func TestProbeTimeout(t *testing.T) {
	tests := []struct {
		name string
		// timeout must leave room for the headers when the body stalls,
		// however loaded the machine: the message depends on whether they
		// arrived.
		timeout time.Duration
		handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})
		want    string
	}{
		{name: "no headers", timeout: 100 * time.Millisecond,
			handler: func(_ http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
			want: "no answer within 100ms"},
		{name: "headers, then a stalled body", timeout: 2 * time.Second,
			handler: func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				w.Header().Set("Content-Length", "100")
				w.WriteHeader(http.StatusOK)
				fmt.Fprint(w, `{"level":`)
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
			want: "HTTP 200, then no answer within 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			s := serve(t, func(w http.ResponseWriter, r *http.Request) { tt.handler(w, r, release) })
			t.Cleanup(func() { close(release) })
			target := targetFor(t, s.URL, "/slow")
			target.Timeout = tt.timeout
			p, _ := newProber(t, &fakePods{ip: target.IP})
			r, skipped := p.Probe(t.Context(), target)
			if want := (Result{Message: tt.want, At: proberNow}); skipped || r != want {
				t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, want)
			}
		})
	}
}

func TestProbeConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	target := targetFor(t, "http://"+addr, "/healthz")
	p, rec := newProber(t, &fakePods{ip: target.IP})
	r, skipped := p.Probe(t.Context(), target)
	if want := (Result{Message: "connection refused", At: proberNow}); skipped || r != want {
		t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, want)
	}
	if got := rec.dialled(); len(got) != 1 || got[0] != addr {
		t.Errorf("dialled %v, want [%s]", got, addr)
	}
}

func TestProbeBadURL(t *testing.T) {
	target := targetFor(t, "http://127.0.0.1:1", "/%zz")
	p, rec := newProber(t, &fakePods{ip: target.IP})
	r, skipped := p.Probe(t.Context(), target)
	if want := (Result{Message: "bad probe URL", At: proberNow}); skipped || r != want {
		t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, want)
	}
	if got := rec.dialled(); len(got) != 0 {
		t.Errorf("dialled %v", got)
	}
}

// rawServer answers every connection with response, whatever was asked,
// then closes it.
func rawServer(t *testing.T, response func() string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(generous))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, response())
			})
		}
	})
	return "http://" + l.Addr().String()
}

// messageForm is every message the prober may write: fixed words and
// numbers, never response bytes. A status of "000" reads as HTTP 0.
var messageForm = regexp.MustCompile(`^(HTTP [0-9]{1,3}( \(redirects are not followed\)|, level (warning|error)|, then (no answer within [0-9a-zµ.]+|connection refused|connection reset|host unreachable|TLS handshake failed|request failed))?|no answer within [0-9a-zµ.]+|connection refused|connection reset|host unreachable|TLS handshake failed|request failed|bad probe URL)$`)

func TestProbeMessagesHoldNoResponseBytes(t *testing.T) {
	long := strings.Repeat(secret, 20<<10/len(secret))
	tests := []struct {
		response string
		want     string
	}{
		{"HTTP/1.1 500 " + secret + "\r\nContent-Length: 11\r\n\r\n" + secret, "HTTP 500"},
		{"HTTP/1.1 200 " + secret + "\r\nX-Detail: " + secret + "\r\nContent-Length: " + strconv.Itoa(len(secret)) + "\r\n\r\n" + secret, "HTTP 200"},
		{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"level\":\"warning\",\"message\":\"" + secret + "\"}", "HTTP 200, level warning"},
		{"HTTP/1.1 200 OK\r\n\r\n{\"level\":\"error\",\"message\":\"" + secret + "\"}", "HTTP 200, level error"},
		{"HTTP/1.1 200 OK\r\n\r\n{\"level\":\"" + secret + "\"}", "HTTP 200"},
		{"HTTP/1.1 302 " + secret + "\r\nLocation: http://" + secret + "/\r\nContent-Length: 0\r\n\r\n", "HTTP 302 (redirects are not followed)"},
		{"HTTP/1.1 999 " + secret + "\r\nContent-Length: 0\r\n\r\n", "HTTP 999"},
		{"HTTP/1.1 000 " + secret + "\r\nContent-Length: 0\r\n\r\n", "HTTP 0"},
		{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + secret, "HTTP 200, then connection reset"},
		{"HTTP/1.1 " + secret + "\r\n\r\n", "request failed"},
		{secret + "\r\n\r\n", "request failed"},
		{"HTTP/1.1 200 OK\r\nX-Big: " + long + "\r\n\r\n", "request failed"},
		{"HTTP/1.1 200 OK\r\n" + secret, "request failed"},
		{"HTTP/1.1 200 OK\r\n", "connection reset"},
		{"", "connection reset"},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			base := rawServer(t, func() string { return tt.response })
			target := targetFor(t, base, "/healthz")
			p, _ := newProber(t, &fakePods{ip: target.IP})
			r, skipped := p.Probe(t.Context(), target)
			if skipped || r.Message != tt.want {
				t.Errorf("Probe() = %+v, skipped %v; want message %q", r, skipped, tt.want)
			}
			if strings.Contains(r.Message, secret) || !messageForm.MatchString(r.Message) {
				t.Errorf("message %q is not of the fixed form", r.Message)
			}
		})
	}
}

// FuzzProbeMessage sends any response to the prober, with a secret in it,
// and checks that the message keeps its fixed form.
func FuzzProbeMessage(f *testing.F) {
	f.Add("HTTP/1.1 500 ", "\r\nContent-Length: 5\r\n\r\n")
	f.Add("HTTP/1.1 200 OK\r\n\r\n{\"level\":\"", "\"}")
	f.Add("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n", "\r\n0\r\n\r\n")
	f.Add("HTTP/1.0 301 ", "\r\nLocation: /\r\n\r\n")
	f.Add("", "")
	f.Add("\x00\xff", "\r\n\r\n")
	var response atomic.Value
	response.Store("")
	// One server per fuzzing process; each exec sets the response.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(generous))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				_, _ = io.WriteString(c, response.Load().(string))
			}()
		}
	}()
	addr := l.Addr().(*net.TCPAddr)
	target := Target{UID: testUID, Probe: spec.Probe{Name: "web", Scheme: "http", Port: addr.Port, Path: "/"}, IP: "127.0.0.1", Timeout: generous}
	f.Fuzz(func(t *testing.T, before, after string) {
		response.Store(before + secret + after)
		p := NewProber(&fakePods{ip: "127.0.0.1"}, ProberOptions{})
		r, skipped := p.Probe(t.Context(), target)
		if skipped {
			t.Fatal("skipped")
		}
		if strings.Contains(r.Message, "SECRET") || !messageForm.MatchString(r.Message) {
			t.Fatalf("message %q is not of the fixed form", r.Message)
		}
		if r.OK != (r.Level != "") {
			t.Fatalf("result %+v", r)
		}
	})
}

func TestProbeKeepsTheConnectionAlive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingListener{Listener: l}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"level":"info"}`)
	}))
	s.Listener = counting
	s.Start()
	t.Cleanup(s.Close)

	target := targetFor(t, s.URL, "/healthz")
	p, rec := newProber(t, &fakePods{ip: target.IP})
	for i := range 5 {
		if r, skipped := p.Probe(t.Context(), target); skipped || !r.OK {
			t.Fatalf("probe %d: %+v, skipped %v", i, r, skipped)
		}
	}
	if n := counting.accepted.Load(); n != 1 {
		t.Errorf("5 probes opened %d connections, want 1", n)
	}
	if n := len(rec.dialled()); n != 1 {
		t.Errorf("5 probes dialled %d times, want 1", n)
	}
}

func TestProbeSkipsWhenThePodIPChanged(t *testing.T) {
	var hits atomic.Int32
	s := serve(t, func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	target := targetFor(t, s.URL, "/healthz")
	moved, gone := "127.0.0.2", ""
	tests := []struct {
		name string
		pods *fakePods
	}{
		{"the IP changed before the probe", &fakePods{ip: moved}},
		{"the pod is gone", &fakePods{}},
		// The informer's answer changes between the check in Probe and the
		// dial: the dialer's own check stops it.
		{"the IP changed before the dial", &fakePods{ip: target.IP, next: &moved}},
		{"the pod went before the dial", &fakePods{ip: target.IP, next: &gone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := newProber(t, tt.pods)
			r, skipped := p.Probe(t.Context(), target)
			if !skipped || r != (Result{}) {
				t.Errorf("Probe() = %+v, skipped %v; want skipped", r, skipped)
			}
			if got := rec.dialled(); len(got) != 0 {
				t.Errorf("dialled %v", got)
			}
		})
	}
	other := target
	other.UID = "another-pod"
	p, rec := newProber(t, &fakePods{ip: target.IP})
	if _, skipped := p.Probe(t.Context(), other); !skipped || len(rec.dialled()) != 0 {
		t.Errorf("a pod the informer does not know was probed")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server got %d requests", n)
	}
}

func TestProbeIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		// Every Linux CI machine binds ::1; a machine that cannot must
		// fail here rather than silently skip the IPv6 path.
		t.Fatalf("bind [::1]:0: %v", err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"level":"warning"}`)
	}))
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)

	port := l.Addr().(*net.TCPAddr).Port
	target := Target{UID: testUID, Probe: spec.Probe{Name: "web", Scheme: "http", Port: port, Path: "/healthz?x=1"}, IP: "::1", Timeout: generous}
	if got, want := target.Probe.URL(target.IP), "http://[::1]:"+strconv.Itoa(port)+"/healthz?x=1"; got != want {
		t.Fatalf("URL %q, want %q", got, want)
	}
	p, rec := newProber(t, &fakePods{ip: "::1"})
	r, skipped := p.Probe(t.Context(), target)
	if want := (Result{OK: true, Level: spec.LevelWarning, Message: "HTTP 200, level warning", At: proberNow}); skipped || r != want {
		t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, want)
	}
	if got := rec.dialled(); len(got) != 1 || got[0] != "[::1]:"+strconv.Itoa(port) {
		t.Errorf("dialled %v", got)
	}
}

func TestProbeHTTPS(t *testing.T) {
	protos := make(chan string, 10)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		fmt.Fprint(w, `{"level":"warning"}`)
	}))
	// The plain-HTTP probe below makes the server log a handshake error.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	target := targetFor(t, s.URL, "/healthz")
	if target.Probe.Scheme != "https" {
		t.Fatalf("scheme %q", target.Probe.Scheme)
	}
	p, _ := newProber(t, &fakePods{ip: target.IP})
	r, skipped := p.Probe(t.Context(), target)
	if want := (Result{OK: true, Level: spec.LevelWarning, Message: "HTTP 200, level warning", At: proberNow}); skipped || r != want {
		t.Errorf("Probe() = %+v, skipped %v; want %+v", r, skipped, want)
	}
	if proto := <-protos; proto != "HTTP/1.1" {
		t.Errorf("protocol %q, want HTTP/1.1", proto)
	}

	// Plain HTTP to a TLS endpoint, and TLS to a plain one: fixed words.
	plain := serve(t, func(http.ResponseWriter, *http.Request) {})
	mismatch := targetFor(t, plain.URL, "/healthz")
	mismatch.Probe.Scheme = "https"
	p, _ = newProber(t, &fakePods{ip: mismatch.IP})
	if r, _ := p.Probe(t.Context(), mismatch); r.OK || r.Message != "TLS handshake failed" {
		t.Errorf("https to a plain server: %+v", r)
	}
	toTLS := target
	toTLS.Probe.Scheme = "http"
	if r, _ := newProberFor(t, toTLS).Probe(t.Context(), toTLS); r.OK || r.Message != "HTTP 400" {
		t.Errorf("http to a TLS server: %+v", r)
	}
}

func newProberFor(t *testing.T, target Target) *Prober {
	p, _ := newProber(t, &fakePods{ip: target.IP})
	return p
}
