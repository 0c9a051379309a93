package testworkload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/spec"
)

// DefaultShutdownTimeout is how long Run lets requests in flight finish
// once its context ends.
const DefaultShutdownTimeout = 10 * time.Second

// Options configure a Server. The zero value serves a healthy watchdog.
type Options struct {
	// Clock tells the time. Nil means the real clock.
	Clock clock.PassiveClock
	// RedirectWatchdogTo, when not empty, makes /watchdog answer 302 Found
	// with this absolute http(s) URL as Location, whatever the mode.
	// Test-only: the prober must not follow redirects.
	RedirectWatchdogTo string
	// WatchdogBodyBytes, when more than the JSON answer's size, pads
	// /watchdog's body with spaces to this many bytes (Content-Length set).
	// Test-only: the prober must not read huge bodies. 0 means no padding.
	WatchdogBodyBytes int64
	// Files, when not nil, is served read-only at GET /files/: what the app
	// sees of its data, for demos and tests to show. Directories are
	// listed.
	Files fs.FS
	// ShutdownTimeout bounds the graceful shutdown in Run. 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Log gets one line per mode change.
	Log logr.Logger
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.RedirectWatchdogTo != "" {
		u, err := url.Parse(o.RedirectWatchdogTo)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("redirect target %q: want an absolute http:// or https:// URL", o.RedirectWatchdogTo))
		}
		if o.WatchdogBodyBytes != 0 {
			errs = append(errs, errors.New("a redirect target and a watchdog body size exclude each other: a redirect has no watchdog body"))
		}
	}
	if o.WatchdogBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("watchdog body bytes %d: must not be negative", o.WatchdogBodyBytes))
	}
	if o.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout %s: must not be negative", o.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Server is the test workload: its watchdog state and its HTTP handlers.
type Server struct {
	opts    Options
	clock   clock.PassiveClock
	handler http.Handler

	mu    sync.Mutex
	state State
}

// New returns a Server whose watchdog is OK, or an error when opts do not
// validate.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("testworkload: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &Server{opts: opts, clock: opts.Clock}
	s.state = State{Mode: ModeOK, Since: s.clock.Now()}
	m := newMetrics(s.State)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", s.ping)
	mux.HandleFunc("GET /watchdog", s.watchdog)
	mux.HandleFunc("POST /fail", s.change(ModeFailing))
	mux.HandleFunc("POST /warn", s.change(ModeWarning))
	mux.HandleFunc("POST /recover", s.change(ModeOK))
	if opts.Files != nil {
		mux.Handle("GET /files/", http.StripPrefix("/files/", http.FileServerFS(opts.Files)))
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	s.handler = m.count(mux)
	return s, nil
}

// Handler serves every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// State is the watchdog's state now.
func (s *Server) State() State {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = s.state.At(now)
	return s.state
}

func (s *Server) ping(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "pong")
}

// watchdogAnswer is /watchdog's body, in the form the prober reads.
type watchdogAnswer struct {
	Level   spec.Level `json:"level"`
	Message string     `json:"message"`
}

func (s *Server) watchdog(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if s.opts.RedirectWatchdogTo != "" {
		http.Redirect(w, r, s.opts.RedirectWatchdogTo, http.StatusFound)
		return
	}
	st := s.State()
	body, err := json.Marshal(watchdogAnswer{Level: st.Level(), Message: st.Message()})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	code := http.StatusOK
	if st.Mode == ModeFailing {
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	padding := s.opts.WatchdogBodyBytes - int64(len(body))
	if padding > 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(s.opts.WatchdogBodyBytes, 10))
	}
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(body); err != nil || padding <= 0 {
		return
	}
	writeSpaces(w, padding)
}

// writeSpaces writes n spaces in chunks, so that a huge body costs no
// memory; it stops when the client goes away.
func writeSpaces(w io.Writer, n int64) {
	var chunk [32 << 10]byte
	for i := range chunk {
		chunk[i] = ' '
	}
	for n > 0 {
		m := min(n, int64(len(chunk)))
		if _, err := w.Write(chunk[:m]); err != nil {
			return
		}
		n -= m
	}
}

// stateAnswer is the body of POST /fail, /warn and /recover.
type stateAnswer struct {
	Mode    Mode   `json:"mode"`
	Since   string `json:"since"`
	Until   string `json:"until,omitempty"`
	Message string `json:"message"`
}

// change returns the handler that enters mode, for for=DURATION when given.
func (s *Server) change(mode Mode) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			http.Error(w, "bad query: "+err.Error(), http.StatusBadRequest)
			return
		}
		var d time.Duration
		if mode != ModeOK {
			if d, err = ParseFor(q.Get("for")); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		} else if q.Has("for") {
			http.Error(w, "POST /recover takes no for=", http.StatusBadRequest)
			return
		}
		st := s.set(enter(mode, s.clock.Now(), d))
		answer := stateAnswer{Mode: st.Mode, Since: st.Since.UTC().Format(time.RFC3339), Message: st.Message()}
		if !st.Until.IsZero() {
			answer.Until = st.Until.UTC().Format(time.RFC3339)
		}
		s.opts.Log.Info("watchdog mode changed", "mode", st.Mode, "until", answer.Until)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
	}
}

func (s *Server) set(st State) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = st
	return st
}
