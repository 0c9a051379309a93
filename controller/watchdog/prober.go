package watchdog

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/spec"
)

// MaxBodyBytes is the most of a response body the prober reads.
const MaxBodyBytes = 10 << 10

// Target is one watchdog of one pod, at the pod's IP when it was scheduled.
type Target struct {
	UID       types.UID
	Namespace string
	Pod       string
	Probe     spec.Probe
	IP        string
	Timeout   time.Duration
}

// PodIPs answers a pod's current IP from the informer, by UID. ok is false
// when the pod is gone or has no IP.
type PodIPs interface {
	CurrentIP(uid types.UID) (ip string, ok bool)
}

// DialFunc dials a TCP address; a seam for tests that record connections.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// ErrNotPodIP is returned when a probe would reach anything but the pod's
// current IP. Such a probe is skipped, not counted as a failure.
var ErrNotPodIP = errors.New("address is not the pod's current IP")

// Prober makes guarded HTTP requests to watchdog endpoints. It reuses
// connections (keep-alive), follows no redirects, uses no proxy, reads at
// most MaxBodyBytes, and dials only the pod's current IP, checked against
// the informer just before dialling, because pod IPs get reused.
type Prober struct {
	client *http.Client
	pods   PodIPs
	clock  clock.PassiveClock
}

// ProberOptions configure a Prober. Zero values mean the defaults.
type ProberOptions struct {
	// Dial dials TCP; nil: a net.Dialer.
	Dial DialFunc
	// IdleConnTimeout closes connections unused this long; 0: 90 s, longer
	// than the default period, so connections live across probes.
	IdleConnTimeout time.Duration
	Clock           clock.PassiveClock
}

type targetKey struct{}

// NewProber builds a Prober that checks addresses against pods.
func NewProber(pods PodIPs, opts ProberOptions) *Prober {
	dial := opts.Dial
	if dial == nil {
		d := &net.Dialer{KeepAlive: -1}
		dial = d.DialContext
	}
	idle := opts.IdleConnTimeout
	if idle == 0 {
		idle = 90 * time.Second
	}
	p := &Prober{pods: pods, clock: opts.Clock}
	if p.clock == nil {
		p.clock = clock.RealClock{}
	}
	guarded := func(ctx context.Context, network, addr string) (net.Conn, error) {
		t, ok := ctx.Value(targetKey{}).(Target)
		if !ok {
			return nil, fmt.Errorf("dial %s: %w (no target)", addr, ErrNotPodIP)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		ip := net.ParseIP(host)
		current, ok := pods.CurrentIP(t.UID)
		if ip == nil || !ok || !ip.Equal(net.ParseIP(current)) || !ip.Equal(net.ParseIP(t.IP)) {
			return nil, fmt.Errorf("dial %s: %w", addr, ErrNotPodIP)
		}
		return dial(ctx, network, addr)
	}
	p.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            guarded,
			DisableCompression:     true,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        idle,
			MaxResponseHeaderBytes: 16 << 10,
			ReadBufferSize:         1 << 10,
			WriteBufferSize:        512,
			// Watchdog TLS gives privacy on the wire; the pod's identity is
			// its current IP, checked before every dial.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // see above
			ForceAttemptHTTP2: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return p
}

// Probe probes one target. skipped is true when the probe was not made
// because the pod's IP changed or it is gone: that says nothing about the
// watchdog.
func (p *Prober) Probe(ctx context.Context, t Target) (r Result, skipped bool) {
	if current, ok := p.pods.CurrentIP(t.UID); !ok || current != t.IP {
		return Result{}, true
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, targetKey{}, t), t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.Probe.URL(t.IP), nil)
	if err != nil {
		return Result{Message: "bad probe URL", At: p.clock.Now()}, false
	}
	req.Header.Set("User-Agent", "autocrane-prober")
	req.Header.Set("Accept", "application/json, text/plain;q=0.9")
	resp, err := p.client.Do(req)
	if err != nil {
		if errors.Is(err, ErrNotPodIP) {
			return Result{}, true
		}
		return Result{Message: describeError(err, t.Timeout), At: p.clock.Now()}, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	at := p.clock.Now()
	if err != nil {
		return Result{Message: fmt.Sprintf("HTTP %d, then %s", resp.StatusCode, describeError(err, t.Timeout)), At: at}, false
	}
	return classify(resp.StatusCode, body, at), false
}

// classify judges a response by its status code and, for a 2xx with a
// small JSON body, the level it reports. The body is never copied into the
// result.
func classify(code int, body []byte, at time.Time) Result {
	switch {
	case code >= 300 && code < 400:
		return Result{Message: fmt.Sprintf("HTTP %d (redirects are not followed)", code), At: at}
	case code < 200 || code >= 300:
		return Result{Message: fmt.Sprintf("HTTP %d", code), At: at}
	}
	level := spec.LevelInfo
	if trimmed := bytes.TrimSpace(body); len(body) <= MaxBodyBytes && len(trimmed) > 0 && trimmed[0] == '{' {
		var answer struct {
			Level string `json:"level"`
		}
		if json.Unmarshal(body, &answer) == nil {
			if l, err := spec.ParseLevel(answer.Level); err == nil {
				level = l
			}
		}
	}
	switch level {
	case spec.LevelError:
		return Result{Message: fmt.Sprintf("HTTP %d, level error", code), At: at}
	case spec.LevelWarning:
		return Result{OK: true, Level: spec.LevelWarning, Message: fmt.Sprintf("HTTP %d, level warning", code), At: at}
	}
	return Result{OK: true, Level: spec.LevelInfo, Message: fmt.Sprintf("HTTP %d", code), At: at}
}

// describeError names what went wrong in a few fixed words, so no
// peer-controlled text reaches an annotation.
func describeError(err error, timeout time.Duration) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	// The client turns a plain HTTP answer to a TLS hello into
	// ErrSchemeMismatch, no longer a RecordHeaderError.
	var tlsErr tls.RecordHeaderError
	if errors.As(err, &tlsErr) || errors.Is(err, http.ErrSchemeMismatch) {
		return "TLS handshake failed"
	}
	return "request failed"
}
