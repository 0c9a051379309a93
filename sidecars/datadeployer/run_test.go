package datadeployer

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autocrane/autocrane/sidecars/datadeployer/repotest"
	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

// pod plays the kubelet's downward API volume for Run.
type pod struct {
	t    *testing.T
	dir  string
	file string
}

func newPod(t *testing.T) *pod {
	p := &pod{t: t, dir: t.TempDir()}
	p.file = filepath.Join(p.dir, "annotations")
	return p
}

func (p *pod) annotate(a map[string]string) {
	p.t.Helper()
	if err := podinfo.WriteLikeKubelet(p.dir, "annotations", a); err != nil {
		p.t.Fatal(err)
	}
}

func runOptions(t *testing.T, repo *repotest.Server, p *pod, mode Mode) Options {
	o := testOptions(t, repo, t.TempDir())
	o.Mode, o.AnnotationsFile = mode, p.file
	o.AnnotationsPollInterval = 20 * time.Millisecond
	return o
}

func TestRunInit(t *testing.T) {
	tests := map[string]struct {
		annotations func(v version) map[string]string
		serve       bool
		timeout     time.Duration
		wantErr     string
		wantLastErr string
	}{
		"data there: exit 0": {
			annotations: func(v version) map[string]string {
				return map[string]string{spec.PrefixDataRequest + "models": v.request("models"), spec.PrefixData + "models": "models"}
			},
			serve: true,
		},
		"no request: a message naming the annotation": {
			annotations: func(version) map[string]string { return map[string]string{"other": "x"} },
			timeout:     300 * time.Millisecond,
			wantErr:     "data not ready: deployment models: waited 300ms for the annotation request.data.autocrane.io/models, which the controller (or the injector at admission) writes",
		},
		"blob missing: a message with the last error": {
			annotations: func(v version) map[string]string {
				return map[string]string{spec.PrefixDataRequest + "models": v.request("models")}
			},
			timeout:     2 * time.Second,
			wantErr:     "data not ready: deployment models: waited 2s for models/v1/sha256:",
			wantLastErr: "failed attempts; last error: download models/v1/sha256:",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			repo := repotest.New(t)
			v1 := newVersion(t, "v1")
			if tc.serve {
				repo.Add(v1.content)
			}
			p := newPod(t)
			p.annotate(tc.annotations(v1))
			opts := runOptions(t, repo, p, ModeInit)
			if tc.timeout != 0 {
				opts.InitTimeout = tc.timeout
			}
			err := Run(t.Context(), opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(opts.Location, "models", "a.txt"))
				if err != nil || string(b) != "v1" {
					t.Fatalf("data: %q %v", b, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want prefix %q", err, tc.wantErr)
			}
			if tc.wantLastErr != "" && (!strings.Contains(err.Error(), tc.wantLastErr) || !strings.Contains(err.Error(), "404 Not Found")) {
				t.Fatalf("err = %v, want the last error %q (404)", err, tc.wantLastErr)
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunNativeSidecar: /readyz (the startup probe) passes only after the
// first sync; an annotation change swaps the new version in; /status,
// /watchdog, /healthz and /metrics answer.
func TestRunNativeSidecar(t *testing.T) {
	repo := repotest.New(t)
	v1, v2 := newVersion(t, "v1"), newVersion(t, "v2")
	repo.Add(v1.content)
	repo.Add(v2.content)
	p := newPod(t)
	p.annotate(map[string]string{"unrelated": "x"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	opts := runOptions(t, repo, p, ModeNativeSidecar)
	opts.Listener = ln
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()

	eventually(t, "the server", func() (bool, string) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil, ""
	})
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || body != "waiting for the first sync: models\n" {
		t.Fatalf("/readyz before data: %d %q", code, body)
	}
	p.annotate(map[string]string{spec.PrefixDataRequest + "models": v1.request("models")})
	eventually(t, "ready", func() (bool, string) {
		code, body := get(t, base+"/readyz")
		return code == http.StatusOK, body
	})
	p.annotate(map[string]string{spec.PrefixDataRequest + "models": v2.request("models")})
	var st Status
	eventually(t, "v2 in /status", func() (bool, string) {
		resp, err := http.Get(base + "/status")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		st, err = DecodeStatus(resp.Body)
		if err != nil {
			return false, err.Error()
		}
		s, _ := st.Deployment("models")
		return s.Version == "v2" && s.State == spec.DataLive, ""
	})
	if b, _ := os.ReadFile(filepath.Join(opts.Location, "models", "a.txt")); string(b) != "v2" {
		t.Fatalf("data = %q", b)
	}
	if code, body := get(t, base+"/watchdog"); code != http.StatusOK || !strings.HasPrefix(body, `{"level":"info","message":`) {
		t.Fatalf("/watchdog: %d %s", code, body)
	}
	code, body := get(t, base+"/metrics")
	for _, want := range []string{
		`autocrane_datadeployer_syncs_total{deployment="models",result="downloaded"} 2`,
		`autocrane_datadeployer_version_info{deployment="models",digest="` + v2.digest + `",source="models",version="v2"} 1`,
		`autocrane_datadeployer_swap_duration_seconds_count 2`,
		`autocrane_datadeployer_downloaded_bytes_total{deployment="models"} 8192`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	tests := map[string]struct {
		change  func(*Options)
		wantErr string
	}{
		"relative location":   {change: func(o *Options) { o.Location = "data" }, wantErr: `--location "data" must be a clean absolute path`},
		"bad url":             {change: func(o *Options) { o.RepositoryURL = "ftp://x" }, wantErr: "--repository-url: scheme must be http or https"},
		"no deployments":      {change: func(o *Options) { o.Deployments = nil }, wantErr: "--deployments: name at least one data deployment"},
		"bad mode":            {change: func(o *Options) { o.Mode = "daemon" }, wantErr: `--mode "daemon" is not one of init, sidecar, native-sidecar`},
		"retry max below min": {change: func(o *Options) { o.RetryMin, o.RetryMax = time.Minute, time.Second }, wantErr: "--retry-max (1s) must not be less than --retry-min (1m0s)"},
		"notify url off pod":  {change: func(o *Options) { o.Notify.URL = "http://10.0.0.1/reload" }, wantErr: `--notify-url host "10.0.0.1" is not 127.0.0.1, localhost or [::1]`},
		"no annotations file": {change: func(o *Options) { o.AnnotationsFile = "" }, wantErr: "--annotations-file is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			repo := repotest.New(t)
			opts := runOptions(t, repo, newPod(t), ModeSidecar)
			tc.change(&opts)
			err := Run(t.Context(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
