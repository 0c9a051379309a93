package datarollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/spec"
)

// DeployerStatus is the part of the datadeployer's GET /status answer the
// controller reads:
//
//	{"deployments": [{"name": "models", "state": "live",
//	  "version": "20261121t150405z-abcdef012345", "digest": "sha256:...",
//	  "since": "2026-11-21T15:05:00Z", "error": ""}]}
//
// version, digest and since are the version the pod holds live (absent when
// none); state is what the datadeployer does with the requested version
// (syncing, live or failed); error is its last error. Other fields are
// ignored.
type DeployerStatus struct {
	Deployments []DeployerDeployment `json:"deployments"`
}

// DeployerDeployment is one data deployment in DeployerStatus.
type DeployerDeployment struct {
	Name    string         `json:"name"`
	State   spec.DataState `json:"state"`
	Version string         `json:"version,omitempty"`
	Digest  string         `json:"digest,omitempty"`
	Since   time.Time      `json:"since,omitzero"`
	Error   string         `json:"error,omitempty"`
}

// Status reader defaults.
const (
	// DefaultDeployerPort is where the injected datadeployer listens.
	DefaultDeployerPort = 9780
	// DefaultStatusTimeout bounds one /status request.
	DefaultStatusTimeout = 2 * time.Second
	// maxStatusBody bounds a /status answer.
	maxStatusBody = 1 << 20
)

// decodeDeployerStatus reads a /status body.
func decodeDeployerStatus(body []byte) (DeployerStatus, error) {
	var s DeployerStatus
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&s); err != nil {
		return DeployerStatus{}, fmt.Errorf("decode datadeployer status: %w", err)
	}
	return s, nil
}

// StatusValues computes the status.data.autocrane.io/NAME values to write for
// a pod's data deployments names, given what its datadeployer reports: a key
// maps to its new value, only when it differs from annotations. A
// deployment the datadeployer does not report, or reports with an invalid
// state, version or digest, is left as it is: nothing a pod says can put a
// malformed value into an annotation.
func StatusValues(annotations map[string]string, names []string, st DeployerStatus) map[string]string {
	reported := make(map[string]DeployerDeployment, len(st.Deployments))
	for _, d := range st.Deployments {
		reported[d.Name] = d
	}
	out := map[string]string{}
	for _, name := range names {
		d, ok := reported[name]
		if !ok {
			continue
		}
		v := spec.DataStatus{State: d.State, Version: d.Version, Digest: d.Digest, Since: d.Since, Message: d.Error}.String()
		if _, err := spec.ParseDataStatus(v); err != nil {
			continue
		}
		key := spec.PrefixDataStatus + name
		if annotations[key] != v {
			out[key] = v
		}
	}
	return out
}

// DialFunc dials a TCP address; a seam for tests.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// CurrentIPFunc answers a pod's current IP from the cache; ok is false when
// the pod is gone, was replaced (another UID), or has no IP.
type CurrentIPFunc func(ctx context.Context, pod types.NamespacedName, uid types.UID) (ip string, ok bool)

// ErrNotPodIP is returned when a status read would reach anything but the
// pod's current IP; such a read is skipped.
var ErrNotPodIP = errors.New("address is not the pod's current IP")

// StatusTarget is the pod whose datadeployer to ask, at the IP it had.
type StatusTarget struct {
	Pod types.NamespacedName
	UID types.UID
	IP  string
}

// StatusReader reads datadeployers' /status over guarded HTTP: it dials only
// the pod's current IP (checked against the cache just before dialling,
// because pod IPs get reused), follows no redirects, uses no proxy, and reads
// at most 1 MiB within a per-request timeout.
type StatusReader struct {
	client  *http.Client
	port    int
	timeout time.Duration
}

type statusTargetKey struct{}

// NewStatusReader builds a StatusReader for datadeployers on port. dial may
// be nil (a net.Dialer); current is required.
func NewStatusReader(port int32, timeout time.Duration, dial DialFunc, current CurrentIPFunc) *StatusReader {
	if port == 0 {
		port = DefaultDeployerPort
	}
	if timeout <= 0 {
		timeout = DefaultStatusTimeout
	}
	if dial == nil {
		d := &net.Dialer{KeepAlive: -1}
		dial = d.DialContext
	}
	guarded := func(ctx context.Context, network, addr string) (net.Conn, error) {
		t, ok := ctx.Value(statusTargetKey{}).(StatusTarget)
		if !ok {
			return nil, fmt.Errorf("dial %s: %w (no target)", addr, ErrNotPodIP)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		ip := net.ParseIP(host)
		cur, ok := current(ctx, t.Pod, t.UID)
		if ip == nil || !ok || !ip.Equal(net.ParseIP(cur)) || !ip.Equal(net.ParseIP(t.IP)) {
			return nil, fmt.Errorf("dial %s: %w", addr, ErrNotPodIP)
		}
		return dial(ctx, network, addr)
	}
	return &StatusReader{
		port:    int(port),
		timeout: timeout,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                  nil,
				DialContext:            guarded,
				DisableCompression:     true,
				DisableKeepAlives:      true,
				MaxResponseHeaderBytes: 16 << 10,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Read asks the pod's datadeployer for its status.
func (r *StatusReader) Read(ctx context.Context, t StatusTarget) (DeployerStatus, error) {
	if net.ParseIP(t.IP) == nil {
		return DeployerStatus{}, fmt.Errorf("pod %s: %w", t.Pod, ErrNotPodIP)
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, statusTargetKey{}, t), r.timeout)
	defer cancel()
	u := "http://" + net.JoinHostPort(t.IP, strconv.Itoa(r.port)) + "/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return DeployerStatus{}, fmt.Errorf("datadeployer status of %s: %w", t.Pod, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "autocrane-data-rollout")
	resp, err := r.client.Do(req)
	if err != nil {
		return DeployerStatus{}, fmt.Errorf("datadeployer status of %s: %w", t.Pod, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return DeployerStatus{}, fmt.Errorf("datadeployer status of %s: HTTP %d", t.Pod, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody+1))
	if err != nil {
		return DeployerStatus{}, fmt.Errorf("datadeployer status of %s: read: %w", t.Pod, err)
	}
	if len(body) > maxStatusBody {
		return DeployerStatus{}, fmt.Errorf("datadeployer status of %s: answer larger than %d bytes", t.Pod, maxStatusBody)
	}
	st, err := decodeDeployerStatus(body)
	if err != nil {
		return DeployerStatus{}, fmt.Errorf("datadeployer status of %s: %w", t.Pod, err)
	}
	return st, nil
}
