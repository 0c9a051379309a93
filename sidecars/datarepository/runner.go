package datarepository

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/canonical"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/fetch"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
	"github.com/autocrane/autocrane/spec"
)

// runner checks one source on its own goroutine, so a slow or failing
// source never holds up another.
type runner struct {
	src     spec.Source
	fetcher fetch.Fetcher
	srv     *Server
	log     logr.Logger
	trigger chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}

	mu          sync.Mutex
	lastSync    time.Time
	lastSuccess time.Time
	lastError   string
	failures    int
}

// runnerStatus is what a runner reports for the API.
type runnerStatus struct {
	lastSync, lastSuccess time.Time
	lastError             string
}

func (r *runner) status() runnerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return runnerStatus{lastSync: r.lastSync, lastSuccess: r.lastSuccess, lastError: r.lastError}
}

// syncNow asks for a check as soon as the source is idle; requests made
// while one is pending are one request.
func (r *runner) syncNow() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// stop ends the loop, killing a check in progress, and waits for it.
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

// run checks at once, then every poll interval (with jitter), or after a
// backoff that doubles per failure, or when asked.
func (r *runner) run(ctx context.Context) {
	defer close(r.done)
	clk := r.srv.opts.Clock
	var delay time.Duration
	for {
		if delay > 0 {
			t := clk.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-r.trigger:
				t.Stop()
			case <-t.C():
			}
		}
		if ctx.Err() != nil {
			return
		}
		err := r.syncOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		if err != nil {
			r.failures++
			delay = r.srv.opts.jitter(backoff(r.failures, r.srv.opts.ErrorBackoff, r.srv.opts.MaxErrorBackoff))
		} else {
			r.failures = 0
			delay = r.srv.opts.jitter(r.srv.opts.PollInterval)
		}
		r.mu.Unlock()
	}
}

// backoff is the wait after the n-th failure in a row: initial, doubled
// per further failure, at most maxWait.
func backoff(n int, initial, maxWait time.Duration) time.Duration {
	d := initial
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// jitter spreads d by ±10%, so sources declared together do not poll in
// step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d) / 5
	if spread == 0 {
		return d
	}
	return d - time.Duration(spread/2) + time.Duration(rand.Int64N(spread+1))
}

// syncOnce runs one check and records its outcome.
func (r *runner) syncOnce(ctx context.Context) error {
	s := r.srv
	start := s.opts.Clock.Now()
	result, err := r.check(ctx)
	end := s.opts.Clock.Now()
	s.metrics.syncDuration.WithLabelValues(r.src.Name).Observe(end.Sub(start).Seconds())
	if ctx.Err() != nil && err != nil {
		return err // stopped: the source was removed or the server stops
	}
	if err != nil {
		result = resultError
	}
	s.metrics.syncs.WithLabelValues(r.src.Name, result).Inc()
	r.mu.Lock()
	r.lastSync = end
	if err != nil {
		r.lastError = spec.SanitizeMessage(err.Error())
	} else {
		r.lastSuccess, r.lastError = end, ""
		s.metrics.lastSuccess.WithLabelValues(r.src.Name).Set(float64(end.Unix()))
	}
	r.mu.Unlock()
	if src, ok := s.store.Get(r.src.Name); ok {
		s.metrics.versions.WithLabelValues(r.src.Name).Set(float64(len(src.Versions)))
	}
	if err != nil {
		r.log.Error(err, "check failed")
	}
	return err
}

// check fetches and, when the content changed, stores a new version.
func (r *runner) check(ctx context.Context) (string, error) {
	s := r.srv
	ctx, cancel := context.WithTimeout(ctx, s.opts.SyncTimeout)
	defer cancel()
	prev, ok := s.store.Get(r.src.Name)
	if !ok {
		return "", fmt.Errorf("%w %s", store.ErrUnknownSource, r.src.Name)
	}
	origin := prev.Origin
	if len(prev.Versions) == 0 {
		// Nothing is stored yet: "unchanged" would leave the source empty.
		origin = store.Origin{}
	}
	res, err := r.fetcher.Fetch(ctx, origin)
	if err != nil {
		return "", err
	}
	defer res.Close()
	if res.Unchanged {
		if err := s.store.RecordOrigin(r.src.Name, res.Origin); err != nil {
			return "", err
		}
		r.log.V(1).Info("unchanged", "revision", res.Revision)
		return resultUnchanged, nil
	}
	blob, err := s.store.NewBlob(s.opts.MaxVersionBytes)
	if err != nil {
		return "", err
	}
	defer blob.Abort()
	if err := res.Write(blob); err != nil {
		if errors.Is(err, store.ErrTooLarge) {
			return "", fmt.Errorf("revision %s: %w (--max-version-bytes)", res.Revision, err)
		}
		return "", fmt.Errorf("revision %s: %w", res.Revision, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("revision %s: %w", res.Revision, err)
	}
	v, created, err := s.store.Commit(r.src.Name, blob, res.Revision, res.Origin)
	if err != nil {
		return "", err
	}
	if !created {
		r.log.V(1).Info("same content as the newest version", "revision", res.Revision, "version", v.ID)
		return resultUnchanged, nil
	}
	r.log.Info("new version", "version", v.ID, "digest", v.Digest, "size", v.Size, "revision", v.Revision)
	return resultNewVersion, nil
}

// newFetcher builds the fetcher of a declaration. A location the kind's
// own checks refuse gives a fetcher that fails with that reason, so the
// source shows it as its lastError.
func (s *Server) newFetcher(src spec.Source) fetch.Fetcher {
	limits := canonical.Limits{MaxBytes: s.opts.MaxVersionBytes, MaxEntries: s.opts.MaxEntries}
	creds := func() (fetch.Credentials, error) { return fetch.LoadCredentials(s.opts.CredentialsDir, src.Name) }
	insecure := s.opts.insecureAllowed(src.Name)
	switch src.Kind {
	case spec.SourceGit:
		remote, err := fetch.ParseGitLocation(src.Location)
		if err != nil {
			return failing{err}
		}
		return &fetch.Git{
			Location: src.Location, Remote: remote, AllowInsecure: insecure,
			RepoDir: filepath.Join(s.opts.Root, "git", src.Name), HomeDir: filepath.Join(s.opts.Root, "tmp", "home"),
			GitPath: s.opts.GitPath, Credentials: creds, Limits: limits,
		}
	case spec.SourceHTTP:
		return &fetch.HTTP{
			URL: src.Location, AllowInsecure: insecure, Transport: s.opts.Transport, Credentials: creds,
			MaxBodyBytes: s.opts.MaxBodyBytes, SpoolDir: filepath.Join(s.opts.Root, "tmp"), Limits: limits,
		}
	case spec.SourceDir:
		return &fetch.Dir{Path: src.Location, Limits: limits}
	}
	return failing{fmt.Errorf("unknown source kind %q", src.Kind)}
}

// failing is a fetcher for a declaration that cannot work.
type failing struct{ err error }

func (f failing) Fetch(context.Context, store.Origin) (*fetch.Result, error) { return nil, f.err }
