package datadeployer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/spec"
)

// work is one deployment's loop: look at the request, act, then wait for
// a change of the annotations or for the retry delay.
func (d *Deployer) work(ctx context.Context, dep *deployment) {
	for {
		wait := d.step(ctx, dep)
		if ctx.Err() != nil {
			return
		}
		var timer clock.Timer
		var expired <-chan time.Time
		if wait > 0 {
			timer = d.clock.NewTimer(wait)
			expired = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-dep.wake:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// step brings the deployment one step closer to its request and returns
// how long to wait before trying again; 0 means until the request changes.
func (d *Deployer) step(ctx context.Context, dep *deployment) time.Duration {
	d.mu.Lock()
	// Take the pending wake as the request is read, under the lock that
	// SetAnnotations holds to change it and wake: this step sees every
	// change made before, and only a later change wakes the next wait.
	// Taken any earlier, a change in between would be seen here and wake
	// the wait too, for a retry that skips its backoff.
	select {
	case <-dep.wake:
	default:
	}
	if d.annotations == nil { // not read yet
		d.mu.Unlock()
		return 0
	}
	req := dep.request
	switch {
	case req == nil:
		d.noRequestLocked(dep)
		d.mu.Unlock()
		return 0
	case dep.live != nil && dep.live.Digest == req.Digest:
		d.holdLocked(dep, *req)
		d.mu.Unlock()
		return 0
	}
	if wanted := req.String(); dep.attempted != wanted {
		// A new request starts a new series of attempts.
		dep.attempted, dep.failures, dep.failingAt, dep.lastErr = wanted, 0, time.Time{}, ""
		dep.state = spec.DataSyncing
	} else if dep.state != spec.DataFailed {
		dep.state = spec.DataSyncing
	}
	syncCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dep.syncing, dep.cancelSync = req.Digest, cancel
	d.signal()
	d.mu.Unlock()

	ev, err := d.syncVersion(syncCtx, dep, *req)

	d.mu.Lock()
	dep.syncing, dep.cancelSync = "", nil
	failed := err != nil && ctx.Err() == nil && !errors.Is(context.Cause(syncCtx), errRequestChanged) && !errors.Is(err, errRequestChanged)
	if failed {
		dep.failures++
		if dep.failingAt.IsZero() {
			dep.failingAt = d.clock.Now().UTC().Truncate(time.Second)
		}
		dep.lastErr = spec.SanitizeMessage(err.Error())
		dep.state = spec.DataFailed
		d.metrics.syncs.WithLabelValues(dep.name, resultFailed).Inc()
		d.log.Error(err, "sync failed; the live version stays", "deployment", dep.name, "requested", req.String(), "attempts", dep.failures)
	}
	failures := dep.failures
	d.signal()
	d.mu.Unlock()

	d.collectGarbage()
	if failed {
		return d.backoff.delay(failures)
	}
	if err != nil {
		return 0 // cancelled for a new request: its wake is pending
	}
	if d.opts.Mode != ModeInit { // in init mode the app has not started yet
		d.announce(ctx, ev)
	}
	return 0
}

// noRequestLocked: without a (valid) request the held version stays live.
func (d *Deployer) noRequestLocked(dep *deployment) {
	dep.attempted = ""
	switch {
	case !errors.Is(dep.requestErr, ErrNoRequest):
		dep.state, dep.lastErr = spec.DataFailed, spec.SanitizeMessage(errString(dep.requestErr))
		if dep.failures == 0 {
			dep.failures, dep.failingAt = 1, d.clock.Now().UTC().Truncate(time.Second)
		}
	case dep.live != nil:
		dep.state, dep.lastErr, dep.failures, dep.failingAt = spec.DataLive, "", 0, time.Time{}
	default:
		dep.state, dep.lastErr, dep.failures, dep.failingAt = spec.DataSyncing, "", 0, time.Time{}
	}
	d.signal()
}

// holdLocked: the requested content is already live. A new version id for
// the same digest only updates the record.
func (d *Deployer) holdLocked(dep *deployment, req spec.DataRequest) {
	dep.state, dep.lastErr, dep.failures, dep.failingAt, dep.attempted = spec.DataLive, "", 0, time.Time{}, req.String()
	dep.ready = true
	if dep.live.Source != req.Source || dep.live.Version != req.ID {
		dep.live = &versionRecord{Source: req.Source, Version: req.ID, Digest: req.Digest, Since: dep.live.Since}
		d.metrics.setLive(dep.name, dep.live)
		d.saveStateLocked()
	}
	d.signal()
}

// syncVersion makes the requested version live: from disk when it is
// there (a rollback), else downloaded and extracted; then published.
func (d *Deployer) syncVersion(ctx context.Context, dep *deployment, req spec.DataRequest) (SwapEvent, error) {
	hexDigest := hexOf(req.Digest)
	// Held until the swap: garbage collection cannot remove the version
	// between the check and the swap.
	unlock := d.digests.lock(hexDigest)
	defer unlock()
	result := resultLocal
	if !d.store.hasVersion(hexDigest) {
		result = resultDownloaded
		if err := d.download(ctx, dep.name, req); err != nil {
			return SwapEvent{}, err
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if dep.request == nil || dep.request.Digest != req.Digest {
		return SwapEvent{}, errRequestChanged
	}
	start := d.clock.Now()
	if err := d.store.publish(dep.name, hexDigest); err != nil {
		return SwapEvent{}, err
	}
	d.metrics.swapSeconds.Observe(d.clock.Since(start).Seconds())
	old := dep.live
	dep.live = &versionRecord{Source: req.Source, Version: req.ID, Digest: req.Digest, Since: d.clock.Now().UTC().Truncate(time.Second)}
	if old != nil {
		dep.previous = old
	}
	dep.state, dep.lastErr, dep.failures, dep.failingAt, dep.ready = spec.DataLive, "", 0, time.Time{}, true
	d.metrics.syncs.WithLabelValues(dep.name, result).Inc()
	d.metrics.setLive(dep.name, dep.live)
	d.saveStateLocked()
	d.log.Info("version live", "deployment", dep.name, "version", req.ID, "digest", req.Digest, "how", result, "previous", dep.previous.String())
	ev := SwapEvent{Deployment: dep.name, Path: d.Path(dep.name), Source: req.Source, Version: req.ID, Digest: req.Digest, Time: dep.live.Since}
	if old != nil {
		ev.Previous = old.Digest
	}
	return ev, nil
}

// download fetches and extracts a version into versions/HEX.
func (d *Deployer) download(ctx context.Context, name string, req spec.DataRequest) error {
	c := d.fetcher
	received := d.metrics.downloaded.WithLabelValues(name)
	c.OnBytes = func(n int) { received.Add(float64(n)) }
	blob, res, err := c.Fetch(ctx, d.store.staging, req.Digest)
	if err != nil {
		return fmt.Errorf("download %s: %w", req, err)
	}
	d.log.Info("downloaded", "deployment", name, "digest", req.Digest, "requests", res.Requests, "resumed", res.RangeRequests, "bytes", res.Bytes)
	stats, err := d.store.extract(ctx, hexOf(req.Digest), blob, d.opts.Limits)
	if err != nil {
		if ctx.Err() == nil {
			// A blob that cannot be extracted will not get better.
			_ = d.store.removeStaged(blob)
		}
		return fmt.Errorf("extract %s: %w", req, err)
	}
	d.metrics.extracted.WithLabelValues(name).Add(float64(stats.Bytes))
	if err := d.store.removeStaged(blob); err != nil {
		d.log.Error(err, "cannot remove the staged blob", "digest", req.Digest)
	}
	return nil
}

// saveStateLocked writes state.json. A failure is logged, not fatal: the
// symlinks still say what is live.
func (d *Deployer) saveStateLocked() {
	st := savedState{Deployments: map[string]savedDeployment{}}
	for _, dep := range d.deployments {
		if dep.live != nil || dep.previous != nil {
			st.Deployments[dep.name] = savedDeployment{Live: dep.live, Previous: dep.previous}
		}
	}
	if err := d.store.writeState(st); err != nil {
		d.log.Error(err, "cannot save the state")
	}
}

// keeps reports whether a version must stay on disk: some deployment holds
// it live or as its previous version, requests it, or is fetching it.
func (d *Deployer) keeps(digest string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dep := range d.deployments {
		if (dep.live != nil && dep.live.Digest == digest) ||
			(dep.previous != nil && dep.previous.Digest == digest) ||
			(dep.request != nil && dep.request.Digest == digest) ||
			dep.syncing == digest {
			return true
		}
	}
	return false
}

// collectGarbage removes the versions and staged downloads nobody keeps.
func (d *Deployer) collectGarbage() {
	published, _, err := d.store.versions()
	if err != nil {
		d.log.Error(err, "garbage collection")
		return
	}
	for _, h := range published {
		if d.keeps("sha256:" + h) {
			continue
		}
		unlock := d.digests.lock(h)
		if !d.keeps("sha256:" + h) {
			if err := d.store.removeVersion(h); err != nil {
				d.log.Error(err, "garbage collection")
			} else {
				d.log.Info("removed an old version", "digest", "sha256:"+h)
			}
		}
		unlock()
	}
	staged, err := d.store.stagedDigests()
	if err != nil {
		d.log.Error(err, "garbage collection")
		return
	}
	for h, files := range staged {
		if d.keeps("sha256:" + h) {
			continue
		}
		for _, f := range files {
			if err := d.store.removeStaged(f); err != nil {
				d.log.Error(err, "garbage collection")
			}
		}
	}
}

// announce tells the app about a swap. Failures are logged and counted;
// the version stays live.
func (d *Deployer) announce(ctx context.Context, ev SwapEvent) {
	if d.opts.Notify.URL != "" {
		d.countNotification("url", d.notifier.post(ctx, ev))
	}
	if d.opts.Notify.Signal != "" {
		d.countNotification("signal", d.notifier.signal())
	}
}

func (d *Deployer) countNotification(kind string, err error) {
	result := resultSuccess
	if err != nil {
		result = resultError
		d.log.Error(err, "cannot notify the app", "kind", kind)
	}
	d.metrics.notifications.WithLabelValues(kind, result).Inc()
}
