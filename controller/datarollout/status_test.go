package datarollout

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/spec"
)

// deployerServer serves a datadeployer's /status on loopback and counts
// the connections it accepted.
func deployerServer(t *testing.T, handler http.HandlerFunc) (port int32, conns *atomic.Int32) {
	t.Helper()
	conns = &atomic.Int32{}
	ts := httptest.NewUnstartedServer(handler)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	_, p, err := net.SplitHostPort(ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return int32(n), conns
}

const deployerBody = `{"ready":true,"deployments":[{"name":"models","state":"live","source":"models","version":"v2",
"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","since":"2026-03-01T11:59:00Z",
"requested":"models/v2/sha256:2222222222222222222222222222222222222222222222222222222222222222"}]}`

func TestStatusReader(t *testing.T) {
	podKey := types.NamespacedName{Namespace: "team-a", Name: "web-0"}
	target := StatusTarget{Pod: podKey, UID: "uid-web-0", IP: "127.0.0.1"}
	tests := map[string]struct {
		handler http.HandlerFunc
		target  StatusTarget
		// current is the pod's IP in the cache; "" when the pod is gone.
		current   string
		want      DeployerStatus
		wantErr   string
		wantNoIP  bool
		wantConns int32
	}{
		"a status": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/status" {
					http.NotFound(w, r)
					return
				}
				_, _ = io.WriteString(w, deployerBody)
			},
			target: target, current: "127.0.0.1", wantConns: 1,
			want: DeployerStatus{Deployments: []DeployerDeployment{{Name: "models", State: spec.DataLive, Version: "v2", Digest: ver(2).Digest, Since: t0.Add(-time.Minute)}}},
		},
		"the pod's IP changed since it was read": {
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, deployerBody) },
			target:  target, current: "127.0.0.2", wantNoIP: true,
		},
		"the pod is gone": {
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, deployerBody) },
			target:  target, current: "", wantNoIP: true,
		},
		"no IP": {
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, deployerBody) },
			target:  StatusTarget{Pod: podKey, UID: "uid-web-0", IP: "localhost"}, current: "127.0.0.1", wantNoIP: true,
		},
		"a redirect is not followed": {
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://127.0.0.1:1/status", http.StatusFound)
			},
			target: target, current: "127.0.0.1", wantErr: "HTTP 302", wantConns: 1,
		},
		"an error answer": {
			handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
			target:  target, current: "127.0.0.1", wantErr: "HTTP 503", wantConns: 1,
		},
		"too large": {
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"deployments":[],"pad":"`+strings.Repeat("x", maxStatusBody)+`"}`)
			},
			target: target, current: "127.0.0.1", wantErr: "larger than", wantConns: 1,
		},
		"not JSON": {
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") },
			target:  target, current: "127.0.0.1", wantErr: "decode datadeployer status", wantConns: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			port, conns := deployerServer(t, tc.handler)
			current := func(_ context.Context, key types.NamespacedName, uid types.UID) (string, bool) {
				if key != podKey || uid != "uid-web-0" || tc.current == "" {
					return "", false
				}
				return tc.current, true
			}
			r := NewStatusReader(port, 5*time.Second, nil, current)
			got, err := r.Read(t.Context(), tc.target)
			switch {
			case tc.wantNoIP:
				if !errors.Is(err, ErrNotPodIP) {
					t.Fatalf("error %v, want ErrNotPodIP", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			}
			if n := conns.Load(); n != tc.wantConns {
				t.Errorf("%d connections, want %d", n, tc.wantConns)
			}
		})
	}
}

// TestStatusReaderTimeout: a datadeployer that never answers costs one
// timeout, not a stuck worker. The handler blocks until the test ends.
func TestStatusReaderTimeout(t *testing.T) {
	release := make(chan struct{})
	port, _ := deployerServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	current := func(context.Context, types.NamespacedName, types.UID) (string, bool) { return "127.0.0.1", true }
	r := NewStatusReader(port, 50*time.Millisecond, nil, current)
	_, err := r.Read(t.Context(), StatusTarget{Pod: types.NamespacedName{Name: "p"}, IP: "127.0.0.1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
}

func TestStatusValues(t *testing.T) {
	v2 := ver(2)
	since := t0.Add(-time.Minute)
	liveV2 := liveStatus(v2, since)
	tests := map[string]struct {
		annotations map[string]string
		names       []string
		status      DeployerStatus
		want        map[string]string
	}{
		"a new status is written": {
			names:  []string{"models"},
			status: DeployerStatus{Deployments: []DeployerDeployment{{Name: "models", State: spec.DataLive, Version: v2.ID, Digest: v2.Digest, Since: since}}},
			want:   map[string]string{spec.PrefixDataStatus + "models": liveV2},
		},
		"an unchanged status is not": {
			annotations: map[string]string{spec.PrefixDataStatus + "models": liveV2},
			names:       []string{"models"},
			status:      DeployerStatus{Deployments: []DeployerDeployment{{Name: "models", State: spec.DataLive, Version: v2.ID, Digest: v2.Digest, Since: since.Add(300 * time.Millisecond)}}},
			want:        map[string]string{},
		},
		"syncing with nothing held, and a failure message made safe": {
			names: []string{"models", "tables"},
			status: DeployerStatus{Deployments: []DeployerDeployment{
				{Name: "models", State: spec.DataSyncing},
				{Name: "tables", State: spec.DataFailed, Version: v2.ID, Digest: v2.Digest, Since: since, Error: "fetch:\n\tHTTP 500 \x1b[31m"},
			}},
			want: map[string]string{
				spec.PrefixDataStatus + "models": "syncing/-/-/-/",
				spec.PrefixDataStatus + "tables": "failed/v2/" + v2.Digest + "/2026-03-01T11:59:00Z/fetch: HTTP 500 ?[31m",
			},
		},
		"deployments the pod does not have, and invalid reports, are ignored": {
			names: []string{"models", "tables", "maps"},
			status: DeployerStatus{Deployments: []DeployerDeployment{
				{Name: "other", State: spec.DataLive},
				{Name: "models", State: "exploded"},
				{Name: "tables", State: spec.DataLive, Version: "V2/../x", Digest: v2.Digest},
				{Name: "maps", State: spec.DataLive, Version: v2.ID, Digest: "sha256:short"},
			}},
			want: map[string]string{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := StatusValues(tc.annotations, tc.names, tc.status)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSettled(t *testing.T) {
	v1, v2 := ver(1), ver(2)
	req := func(v Version) string { return v.Request("models") }
	tests := map[string]struct {
		annotations map[string]string
		want        bool
	}{
		"no request":             {annotations: map[string]string{}, want: true},
		"live on its request":    {annotations: map[string]string{spec.PrefixDataRequest + "models": req(v2), spec.PrefixDataStatus + "models": liveStatus(v2, t0)}, want: true},
		"live on another":        {annotations: map[string]string{spec.PrefixDataRequest + "models": req(v2), spec.PrefixDataStatus + "models": liveStatus(v1, t0)}},
		"no status yet":          {annotations: map[string]string{spec.PrefixDataRequest + "models": req(v2)}},
		"syncing on its request": {annotations: map[string]string{spec.PrefixDataRequest + "models": req(v2), spec.PrefixDataStatus + "models": "syncing/v2/" + v2.Digest + "/-/"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := settled(tc.annotations, []string{"models"}); got != tc.want {
				t.Errorf("settled %v, want %v", got, tc.want)
			}
		})
	}
}
