package datadeployer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/sidecars/datadeployer/fetch"
	"github.com/autocrane/autocrane/spec"
)

// Deployer keeps each data deployment of a pod on its requested version.
type Deployer struct {
	opts     Options
	log      logr.Logger
	clock    clock.Clock
	store    *store
	fetcher  fetch.Client
	metrics  *metrics
	notifier *notifier
	backoff  backoff
	digests  keyedMutex

	// mu guards everything below, and serializes publishing, state.json
	// writes and garbage collection.
	mu          sync.Mutex
	annotations map[string]string
	deployments []*deployment
	// changed is closed (and replaced) whenever a deployment's status changes.
	changed chan struct{}
}

// deployment is one data deployment's state. Its fields are guarded by
// Deployer.mu.
type deployment struct {
	name     string
	live     *versionRecord
	previous *versionRecord
	state    spec.DataState
	// request is the parsed request; requestErr why there is none.
	request    *spec.DataRequest
	requestErr error
	lastErr    string
	failures   int
	failingAt  time.Time
	// attempted is the request (SOURCE/VERSION/DIGEST) the failures are about.
	attempted string
	// ready: the deployment has held its requested version at least once.
	ready bool
	// syncing is the digest being fetched or extracted; cancelSync stops
	// that when the request moves elsewhere.
	syncing    string
	cancelSync context.CancelCauseFunc
	// wake tells the worker to look at the request again.
	wake chan struct{}
}

// errRequestChanged ends a sync whose request was replaced.
var errRequestChanged = errors.New("the request changed")

// New opens LOCATION, learns what is live there (the symlinks, then
// state.json) and removes leftovers of an earlier run.
func New(opts Options) (*Deployer, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	st, err := openStore(opts.Location)
	if err != nil {
		return nil, err
	}
	d := &Deployer{
		opts:     opts,
		log:      opts.Log,
		clock:    opts.Clock,
		store:    st,
		notifier: newNotifier(opts.Notify),
		backoff:  backoff{min: opts.RetryMin, max: opts.RetryMax, random: opts.random},
		digests:  keyedMutex{locks: map[string]*keyedLock{}},
		changed:  make(chan struct{}),
	}
	d.fetcher = fetch.Client{
		BaseURL:     opts.RepositoryURL,
		HTTP:        opts.HTTPClient,
		TokenFile:   opts.TokenFile,
		IdleTimeout: opts.DownloadIdleTimeout,
		MaxBytes:    maxBlobBytes(opts),
		Pause:       func(ctx context.Context, try int) error { return d.sleep(ctx, d.backoff.delay(try-1)) },
	}
	if d.metrics, err = newMetrics(opts.Registry, opts.Deployments, d.notifier.kinds()); err != nil {
		st.Close()
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	for _, name := range opts.Deployments {
		d.deployments = append(d.deployments, &deployment{name: name, state: spec.DataSyncing, wake: make(chan struct{}, 1)})
	}
	d.restore()
	d.removeWork()
	return d, nil
}

// maxBlobBytes caps a download: the files' bytes plus room for the tar
// headers (and pax records) of every allowed entry.
func maxBlobBytes(o Options) int64 {
	return o.Limits.MaxBytes + int64(o.Limits.MaxEntries)*4096 + 1<<20
}

// restore learns what each deployment holds. The symlink is the truth; the
// saved state names the version and says when it went live.
func (d *Deployer) restore() {
	saved, err := d.store.readState()
	if err != nil {
		d.log.Error(err, "ignoring the saved state; the symlinks still say what is live")
	}
	for _, dep := range d.deployments {
		hexDigest, linkTime, err := d.store.live(dep.name)
		if err != nil {
			if !errors.Is(err, ErrNoLink) {
				dep.lastErr = spec.SanitizeMessage(err.Error())
				d.log.Error(err, "cannot use what is at the deployment's path", "deployment", dep.name)
			}
			continue
		}
		digest := "sha256:" + hexDigest
		s := saved.Deployments[dep.name]
		switch {
		case s.Live != nil && s.Live.Digest == digest:
			dep.live = s.Live
		case s.Previous != nil && s.Previous.Digest == digest:
			// Stopped between a rollback's swap and its state write.
			dep.live = &versionRecord{Source: s.Previous.Source, Version: s.Previous.Version, Digest: digest, Since: linkTime.UTC().Truncate(time.Second)}
			s.Previous = s.Live
		default:
			dep.live = &versionRecord{Digest: digest, Since: linkTime.UTC().Truncate(time.Second)}
		}
		if p := s.Previous; p != nil && p.Digest != digest && d.store.hasVersion(hexOf(p.Digest)) {
			dep.previous = p
		}
		dep.state = spec.DataLive
		d.metrics.setLive(dep.name, dep.live)
		d.log.Info("found a live version", "deployment", dep.name, "version", dep.live.Version, "digest", digest, "since", dep.live.Since)
	}
}

// removeWork deletes extraction temp and trash directories of an earlier run.
func (d *Deployer) removeWork() {
	_, work, err := d.store.versions()
	if err != nil {
		d.log.Error(err, "cannot list versions")
		return
	}
	for _, w := range work {
		if err := d.store.removeWork(w); err != nil {
			d.log.Error(err, "cannot remove a leftover directory", "name", w)
		}
	}
}

// Close releases LOCATION. Call it after Run returned.
func (d *Deployer) Close() error { return d.store.Close() }

// SetAnnotations gives the Deployer the pod's annotations, as
// podinfo.Watcher reads them. Deployments whose request changed are woken,
// and a sync whose request moved elsewhere is cancelled (its partial
// download is kept for later).
func (d *Deployer) SetAnnotations(annotations map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.annotations = maps.Clone(annotations)
	if d.annotations == nil {
		d.annotations = map[string]string{}
	}
	for _, dep := range d.deployments {
		req, err := RequestFor(d.annotations, dep.name)
		if err == nil {
			dep.request, dep.requestErr = &req, nil
		} else {
			dep.request, dep.requestErr = nil, err
		}
		if dep.syncing != "" && (dep.request == nil || dep.request.Digest != dep.syncing) {
			dep.cancelSync(errRequestChanged)
		}
		select {
		case dep.wake <- struct{}{}:
		default:
		}
	}
}

// Run keeps every deployment on its request until ctx ends. It needs
// SetAnnotations to be called (Run in this package's Run does that from
// the downward API file).
func (d *Deployer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, dep := range d.deployments {
		wg.Go(func() { d.work(ctx, dep) })
	}
	wg.Wait()
}

// signal wakes whoever waits for a status change. Hold d.mu.
func (d *Deployer) signal() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// Synced reports whether every deployment holds its requested version now.
func (d *Deployer) Synced() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.syncedLocked()
}

func (d *Deployer) syncedLocked() bool {
	for _, dep := range d.deployments {
		if dep.request == nil || dep.live == nil || dep.live.Digest != dep.request.Digest {
			return false
		}
	}
	return true
}

// Ready reports whether every deployment has held its requested version
// at least once: the initial sync is done.
func (d *Deployer) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dep := range d.deployments {
		if !dep.ready {
			return false
		}
	}
	return true
}

// WaitSynced returns nil once every deployment holds its requested version,
// or an error naming each deployment that does not and what it waits for,
// after timeout.
func (d *Deployer) WaitSynced(ctx context.Context, timeout time.Duration) error {
	timer := d.clock.NewTimer(timeout)
	defer timer.Stop()
	for {
		d.mu.Lock()
		synced, changed := d.syncedLocked(), d.changed
		d.mu.Unlock()
		if synced {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C():
			return d.notSyncedError(timeout)
		}
	}
}

func (d *Deployer) notSyncedError(timeout time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, dep := range d.deployments {
		switch {
		case dep.request == nil && errors.Is(dep.requestErr, ErrNoRequest):
			errs = append(errs, fmt.Errorf("deployment %s: waited %s for the annotation %s%s, which the controller (or the injector at admission) writes", dep.name, timeout, spec.PrefixDataRequest, dep.name))
		case dep.request == nil:
			errs = append(errs, fmt.Errorf("deployment %s: the request is invalid: %s", dep.name, spec.SanitizeMessage(errString(dep.requestErr))))
		case dep.live == nil || dep.live.Digest != dep.request.Digest:
			msg := fmt.Sprintf("deployment %s: waited %s for %s", dep.name, timeout, dep.request)
			if dep.lastErr != "" {
				msg += fmt.Sprintf(" (%d failed attempts; last error: %s)", dep.failures, dep.lastErr)
			}
			errs = append(errs, errors.New(msg))
		}
	}
	return fmt.Errorf("data not ready: %w", errors.Join(errs...))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Status reports every deployment.
func (d *Deployer) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Status{Ready: true, Deployments: make([]DeploymentStatus, 0, len(d.deployments))}
	for _, dep := range d.deployments {
		ds := DeploymentStatus{Name: dep.name, State: dep.state, Error: dep.lastErr, ConsecutiveFailures: dep.failures, FailingSince: dep.failingAt}
		if dep.live != nil {
			ds.Source, ds.Version, ds.Digest, ds.Since = dep.live.Source, dep.live.Version, dep.live.Digest, dep.live.Since
		}
		if dep.request != nil {
			ds.Requested = dep.request.String()
		}
		ds.Previous = dep.previous.String()
		s.Ready = s.Ready && dep.ready
		s.Deployments = append(s.Deployments, ds)
	}
	return s
}

// Watchdog is what GET /watchdog reports: error once a deployment's sync
// has failed WatchdogFailureAttempts times in a row for at least
// WatchdogFailureGrace, warning while it fails less than that, info
// otherwise.
func (d *Deployer) Watchdog() (spec.Level, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	level, msg := spec.LevelInfo, "every data deployment is on its requested version or syncing normally"
	now := d.clock.Now()
	var worst []string
	for _, dep := range d.deployments {
		if dep.failures == 0 {
			continue
		}
		failing := now.Sub(dep.failingAt).Truncate(time.Second)
		l := spec.LevelWarning
		if dep.failures >= d.opts.WatchdogFailureAttempts && failing >= d.opts.WatchdogFailureGrace {
			l = spec.LevelError
		}
		line := fmt.Sprintf("%s: sync failing for %s (%d attempts): %s", dep.name, failing, dep.failures, dep.lastErr)
		switch {
		case l.Worse(level):
			level, worst = l, []string{line}
		case l == level:
			worst = append(worst, line)
		}
	}
	if len(worst) > 0 {
		msg = worst[0]
		for _, w := range worst[1:] {
			msg += "; " + w
		}
	}
	return level, spec.SanitizeMessage(msg)
}

// sleep waits on the Deployer's clock.
func (d *Deployer) sleep(ctx context.Context, wait time.Duration) error {
	t := d.clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// Path is where deployment name appears: LOCATION/NAME.
func (d *Deployer) Path(name string) string { return filepath.Join(d.opts.Location, name) }

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}

// keyedMutex serializes work on one digest: two deployments asking for
// the same version, or garbage collection and a sync.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.Mutex
	users int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
