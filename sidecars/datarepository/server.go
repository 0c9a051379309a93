package datarepository

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/sourceconfig"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
	"github.com/autocrane/autocrane/spec"
)

// Server is the data repository: it follows the declared sources, stores
// their versions and serves them over HTTP.
type Server struct {
	opts    Options
	log     logr.Logger
	metrics *metrics
	loader  sourceconfig.Loader
	token   *tokenFile
	handler http.Handler

	// store is set before ready turns true; handlers check ready first.
	store *store.Store
	ready atomic.Bool

	mu       sync.Mutex
	runners  map[string]*runner
	problems string
}

// New checks the options and the --source flags. It touches nothing on
// disk; Serve does.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	var flags []spec.Source
	seen := map[string]bool{}
	for _, v := range opts.Sources {
		src, err := sourceconfig.ParseSourceFlag(v)
		if err != nil {
			return nil, err
		}
		if seen[src.Name] {
			return nil, fmt.Errorf("--source %s is given twice", src.Name)
		}
		seen[src.Name] = true
		flags = append(flags, src)
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: m,
		loader:  sourceconfig.Loader{AnnotationsFile: opts.AnnotationsFile, SourcesFile: opts.SourcesFile, Flags: flags},
		runners: map[string]*runner{},
	}
	if opts.TokenFile != "" {
		t, err := newTokenFile(opts.TokenFile)
		if err != nil {
			return nil, err
		}
		s.token = t
	}
	s.handler = s.routes()
	return s, nil
}

// Handler is the HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on Options.Listen and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the API on ln, opens the store, loads the sources and
// follows them until ctx ends; then it drains requests, stops every check
// and releases the root. /healthz answers from the start, /readyz once the
// store and the sources are loaded.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10, IdleTimeout: 2 * time.Minute}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	s.log.Info("listening", "address", ln.Addr().String(), "root", s.opts.Root,
		"annotationsFile", s.opts.AnnotationsFile, "sourcesFile", s.opts.SourcesFile, "sourceFlags", len(s.opts.Sources),
		"credentialsDir", s.opts.CredentialsDir, "tokenRequired", s.token != nil, "allowInsecure", s.opts.AllowInsecure,
		"pollInterval", s.opts.PollInterval, "syncTimeout", s.opts.SyncTimeout, "keep", s.opts.Keep,
		"maxBodyBytes", s.opts.MaxBodyBytes, "maxVersionBytes", s.opts.MaxVersionBytes)

	err := s.follow(ctx, serveErr)

	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if shutErr := hs.Shutdown(shutdownCtx); shutErr != nil {
		err = errors.Join(err, fmt.Errorf("shut down the API: %w", shutErr))
	}
	s.stopRunners()
	if s.store != nil {
		err = errors.Join(err, s.store.Close())
	}
	s.log.Info("stopped")
	return err
}

// follow opens the store, applies the first configuration and then every
// change, until ctx ends or the HTTP server fails.
func (s *Server) follow(ctx context.Context, serveErr <-chan error) error {
	if err := s.open(); err != nil {
		return err
	}
	cfg, err := s.loader.Load()
	if err != nil {
		return fmt.Errorf("first load of the sources: %w", err)
	}
	s.apply(ctx, cfg)
	s.ready.Store(true)
	s.log.Info("ready", "sources", len(cfg.Sources))

	changed := make(chan struct{}, 1)
	w := &sourceconfig.Watcher{
		Files:    []string{s.opts.AnnotationsFile, s.opts.SourcesFile},
		Interval: s.opts.ConfigPollInterval,
		Clock:    s.opts.Clock,
		Log:      s.log,
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go w.Run(watchCtx, changed)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-serveErr:
			return fmt.Errorf("serve the API: %w", err)
		case <-changed:
			cfg, err := s.loader.Load()
			if err != nil {
				s.log.Error(err, "reading the sources failed; keeping the current ones")
				continue
			}
			s.apply(ctx, cfg)
		}
	}
}

// open prepares the root and opens the store.
func (s *Server) open() error {
	tmp := filepath.Join(s.opts.Root, "tmp")
	// Spool files and git's home from before a crash are of no use.
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clean %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "home"), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	st, err := store.Open(store.Options{
		Root:           s.opts.Root,
		Keep:           s.opts.Keep,
		Clock:          s.opts.Clock,
		Log:            s.log.WithName("store"),
		OnBlobsDeleted: func(n int) { s.metrics.blobsDeleted.Add(float64(n)) },
	})
	if err != nil {
		return err
	}
	s.store = st
	return nil
}

// apply makes the running sources match cfg. A source whose new
// declaration is invalid keeps its current one; a source no longer
// declared is stopped and forgotten, and its blobs collected.
func (s *Server) apply(ctx context.Context, cfg sourceconfig.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reportProblems(cfg)
	want := maps.Clone(cfg.Sources)
	for name := range cfg.Invalid {
		if r, ok := s.runners[name]; ok {
			want[name] = r.src
		}
	}
	for name, r := range s.runners {
		if next, ok := want[name]; !ok || next != r.src {
			r.stop()
			delete(s.runners, name)
			if !ok {
				s.metrics.removeSource(name)
				s.log.Info("source removed", "source", name)
			}
		}
	}
	for _, name := range s.store.Names() {
		// A source whose declaration is only refused keeps its history.
		if _, ok := want[name]; !ok && cfg.Invalid[name] == nil {
			if err := s.store.Remove(name); err != nil {
				s.log.Error(err, "removing a source's state failed", "source", name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := s.runners[name]; ok {
			continue
		}
		src := want[name]
		if err := s.store.Declare(name, string(src.Kind), src.Location); err != nil {
			s.log.Error(err, "recording a source failed", "source", name)
			continue
		}
		s.startRunner(ctx, src)
	}
}

func (s *Server) startRunner(ctx context.Context, src spec.Source) {
	rctx, cancel := context.WithCancel(ctx)
	r := &runner{
		src:     src,
		fetcher: s.newFetcher(src),
		srv:     s,
		log:     s.log.WithValues("source", src.Name),
		trigger: make(chan struct{}, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	s.runners[src.Name] = r
	s.metrics.addSource(src.Name)
	if st, ok := s.store.Get(src.Name); ok {
		s.metrics.versions.WithLabelValues(src.Name).Set(float64(len(st.Versions)))
	}
	r.log.Info("following source", "kind", src.Kind, "location", redactLocation(string(src.Kind), src.Location))
	go r.run(rctx)
}

// reportProblems logs the configuration's problems when they change, not
// at every re-read.
func (s *Server) reportProblems(cfg sourceconfig.Config) {
	var lines []string
	for _, p := range cfg.Problems {
		lines = append(lines, p.Error())
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Invalid)) {
		lines = append(lines, cfg.Invalid[name].Error())
	}
	joined := strings.Join(lines, "\n")
	if joined == s.problems {
		return
	}
	s.problems = joined
	for _, l := range lines {
		s.log.Error(errors.New(l), "a source declaration is refused; a source declared before keeps its previous declaration")
	}
}

func (s *Server) stopRunners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, r := range s.runners {
		r.stop()
		delete(s.runners, name)
	}
}

// runner returns a source's runner, or nil.
func (s *Server) runner(name string) *runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runners[name]
}

// status builds a source's API view.
func (s *Server) status(name string) (SourceStatus, bool) {
	r := s.runner(name)
	if r == nil {
		return SourceStatus{}, false
	}
	src, ok := s.store.Get(name)
	if !ok {
		return SourceStatus{}, false
	}
	return statusOf(src, r.status()), true
}

func statusOf(src store.Source, rs runnerStatus) SourceStatus {
	out := SourceStatus{
		Name:      src.Name,
		Kind:      src.Kind,
		Location:  redactLocation(src.Kind, src.Location),
		Versions:  make([]Version, 0, len(src.Versions)),
		Pins:      slices.Clone(src.Pins),
		LastError: rs.lastError,
	}
	if out.Pins == nil {
		out.Pins = []string{}
	}
	for _, v := range src.Versions {
		out.Versions = append(out.Versions, Version{ID: v.ID, Digest: v.Digest, Size: v.Size, Created: v.Created, Revision: v.Revision})
	}
	if !rs.lastSync.IsZero() {
		t := rs.lastSync.UTC()
		out.LastSync = &t
	}
	if !rs.lastSuccess.IsZero() {
		t := rs.lastSuccess.UTC()
		out.LastSuccess = &t
	}
	return out
}

// problemsText is the configuration problems last reported.
func (s *Server) problemsText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.problems
}
