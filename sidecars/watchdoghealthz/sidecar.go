package watchdoghealthz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/sidecars/httpserve"
	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

// Defaults of Options.
const (
	// DefaultAnnotationsFile is where the injector mounts the downward API
	// annotations file.
	DefaultAnnotationsFile = "/etc/autocrane/podinfo/annotations"
	// DefaultShutdownTimeout bounds the graceful shutdown.
	DefaultShutdownTimeout = 5 * time.Second
	// MaxSeconds bounds --min-ready-seconds and
	// --always-healthy-after-seconds, as spec does for the annotations.
	MaxSeconds = spec.MaxSeconds
)

// Options configure a Sidecar.
type Options struct {
	// AnnotationsFile is the downward API file with the pod's annotations.
	// Empty means DefaultAnnotationsFile.
	AnnotationsFile string
	// Config is what the pod asks of the canary.
	Config Config
	// PollInterval is how often the file is re-read when no change
	// notification arrives. 0 means podinfo.DefaultPollInterval.
	PollInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown in Run. 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Clock tells the time. Nil means the real clock.
	Clock clock.PassiveClock
	// Log gets a line when the pod's block or /healthz's result changes.
	Log logr.Logger
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	limit := time.Duration(MaxSeconds) * time.Second
	if o.Config.MinReady < 0 || o.Config.MinReady > limit {
		errs = append(errs, fmt.Errorf("min ready %s: must be from 0s to %s", o.Config.MinReady, limit))
	}
	if a := o.Config.AlwaysHealthyAfter; a != nil {
		if *a < 0 || *a > limit {
			errs = append(errs, fmt.Errorf("always healthy after %s: must be from 0s to %s", *a, limit))
		} else if *a < o.Config.MinReady {
			errs = append(errs, fmt.Errorf("always healthy after %s: must not be less than min ready (%s), or the canary would never gate", *a, o.Config.MinReady))
		}
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("poll interval %s: must not be negative", o.PollInterval))
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %s: must not be negative", o.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Sidecar holds the history of the pod's annotations and answers /healthz.
type Sidecar struct {
	opts    Options
	clock   clock.PassiveClock
	metrics *metrics
	handler http.Handler

	mu         sync.Mutex
	history    History
	lastResult Result
}

// New returns a Sidecar whose process start is now.
func New(opts Options) (*Sidecar, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("watchdoghealthz: %w", err)
	}
	if opts.AnnotationsFile == "" {
		opts.AnnotationsFile = DefaultAnnotationsFile
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &Sidecar{opts: opts, clock: opts.Clock, history: NewHistory(opts.Clock.Now())}
	s.metrics = newMetrics(s.errorFreeSeconds)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	s.handler = mux
	return s, nil
}

// Handler serves /healthz, /readyz and /metrics.
func (s *Sidecar) Handler() http.Handler { return s.handler }

// Observe folds a new read of the annotations into the history.
func (s *Sidecar) Observe(annotations map[string]string) {
	now := s.clock.Now()
	s.mu.Lock()
	prev := s.history
	s.history = prev.Observe(annotations, now)
	next := s.history
	s.mu.Unlock()
	s.metrics.updates.Inc()
	if !prev.Read || !prev.equalBlock(next) || !slices.Equal(prev.Watchdogs.Unparsable, next.Watchdogs.Unparsable) {
		kv := []any{"declared", next.Watchdogs.Declared, "errors", next.Watchdogs.Errors()}
		if next.ErrorFreeSince.IsZero() {
			kv = append(kv, "blockedBy", next.Blockers)
		} else {
			kv = append(kv, "errorFreeSince", next.ErrorFreeSince.UTC().Format(time.RFC3339))
		}
		if len(next.Watchdogs.Unparsable) > 0 {
			kv = append(kv, "unparsableStatuses", next.Watchdogs.Unparsable)
		}
		s.opts.Log.Info("pod watchdogs changed", kv...)
	}
}

// Decide answers /healthz now.
func (s *Sidecar) Decide() Decision {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return Decide(s.history, s.opts.Config, now)
}

func (s *Sidecar) errorFreeSeconds() float64 {
	return s.Decide().ErrorFreeFor.Seconds()
}

// healthzAnswer is /healthz's body.
type healthzAnswer struct {
	Healthy      bool   `json:"healthy"`
	Reason       string `json:"reason"`
	ErrorFreeFor string `json:"errorFreeFor,omitempty"`
}

func (s *Sidecar) healthz(w http.ResponseWriter, _ *http.Request) {
	d := s.Decide()
	s.metrics.answers.WithLabelValues(string(d.Result)).Inc()
	s.mu.Lock()
	changed := d.Result != s.lastResult
	s.lastResult = d.Result
	s.mu.Unlock()
	if changed {
		s.opts.Log.Info("healthz result changed", "result", d.Result, "healthy", d.Healthy, "reason", d.Reason)
	}
	answer := healthzAnswer{Healthy: d.Healthy, Reason: d.Reason}
	if d.ErrorFree {
		answer.ErrorFreeFor = seconds(d.ErrorFreeFor)
	}
	code := http.StatusOK
	if !d.Healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, answer)
}

func (s *Sidecar) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	read := s.history.Read
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !read {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "the annotations file was not read yet\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// writeJSON writes v as one line of JSON, with "<", ">" and "&" left as
// they are: the reader is a prober or a person, not a browser.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// Run watches the annotations file and serves on ln until ctx ends, then
// shuts the server down gracefully. It closes ln.
func (s *Sidecar) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watcher := podinfo.Watcher{Path: s.opts.AnnotationsFile, PollInterval: s.opts.PollInterval, OnChange: s.Observe, Log: s.opts.Log}
	watched := make(chan error, 1)
	go func() { watched <- watcher.Watch(ctx) }()
	err := httpserve.Serve(ctx, ln, s.handler, s.opts.ShutdownTimeout, s.opts.Log)
	cancel()
	if werr := <-watched; werr != nil {
		err = errors.Join(err, fmt.Errorf("watch %s: %w", s.opts.AnnotationsFile, werr))
	}
	return err
}
