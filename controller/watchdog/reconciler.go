package watchdog

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/autocrane/autocrane/spec"
)

// Reconciler keeps each watched pod's probes scheduled and its status keys
// and health label in step with the probe results. It writes only when
// Decide says a key changed.
type Reconciler struct {
	Client    client.Client
	Scheduler *Scheduler
	Prober    *Prober
	Recorder  recorder.EventRecorder
	Metrics   *Metrics
	Clock     clock.PassiveClock
	Log       logr.Logger
	// Changed receives a pod whose watchdog level changed, so it is
	// reconciled (and its keys written) at once.
	Changed chan event.GenericEvent

	mu   sync.Mutex
	pods map[types.NamespacedName]*podEntry
	byID map[types.UID]*podEntry
}

// podEntry is the prober's memory of one pod.
type podEntry struct {
	mu        sync.Mutex
	key       types.NamespacedName
	uid       types.UID
	ip        string
	probes    []spec.Probe
	watchdog  spec.Watchdog
	trackers  map[string]*Tracker
	dropped   []string
	health    string
	hostNetEv bool
}

// CurrentIP implements PodIPs from the reconciler's view of the informer.
func (r *Reconciler) CurrentIP(uid types.UID) (string, bool) {
	r.mu.Lock()
	e := r.byID[uid]
	r.mu.Unlock()
	if e == nil {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ip, e.ip != ""
}

// Reconcile handles one pod.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get pod: %w", err)
	}
	probes, errs := spec.ParseProbes(pod.Annotations)
	if len(errs) > 0 {
		r.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, "InvalidWatchdog", "Probe", "%s", errs.ToAggregate().Error())
	}
	watchdog, _ := spec.ParseWatchdog(pod.Annotations)
	if pod.Spec.HostNetwork && len(probes) > 0 {
		e := r.entry(pod)
		e.mu.Lock()
		first := !e.hostNetEv
		e.hostNetEv = true
		e.mu.Unlock()
		if first {
			r.Recorder.Eventf(pod, nil, corev1.EventTypeWarning, "WatchdogSkipped", "Probe",
				"not probing: the pod uses the host network, so its IP is the node's")
		}
		probes = nil
	}
	if len(probes) == 0 && !hasStatusKeys(pod) {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}

	e := r.entry(pod)
	now := r.Clock.Now()
	e.mu.Lock()
	r.sync(e, pod, probes, watchdog, now)
	state := PodState{Annotations: pod.Annotations, Labels: pod.Labels, Probes: e.probes, Trackers: e.trackers, Dropped: e.dropped, Watchdog: e.watchdog}
	patch := Decide(state, now)
	requeue := nextStale(e, now)
	e.mu.Unlock()

	if !patch.Empty() {
		if err := r.write(ctx, pod, patch); err != nil {
			return ctrl.Result{}, err
		}
	}
	e.mu.Lock()
	e.dropped = nil
	r.setHealth(e, healthAfter(pod, patch))
	e.mu.Unlock()
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// sync brings the entry in line with the pod: its IP, probes and tuning,
// trackers seeded from recorded statuses, and the scheduler's targets.
func (r *Reconciler) sync(e *podEntry, pod *corev1.Pod, probes []spec.Probe, w spec.Watchdog, now time.Time) {
	e.ip = ""
	running := pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
	if running {
		e.ip = pod.Status.PodIP
	}
	wanted := map[string]bool{}
	for _, p := range probes {
		wanted[p.Name] = true
		if e.trackers[p.Name] == nil {
			t := &Tracker{}
			if st, err := spec.ParseWatchdogStatus(pod.Annotations[spec.PrefixWatchdogStatus+p.Name]); err == nil {
				*t = Seed(st, now)
			}
			e.trackers[p.Name] = t
		}
	}
	for _, old := range e.probes {
		if !wanted[old.Name] {
			delete(e.trackers, old.Name)
			e.dropped = append(e.dropped, old.Name)
			r.Scheduler.Remove(TargetKey{UID: string(e.uid), Name: old.Name})
		}
	}
	e.probes, e.watchdog = probes, w
	for _, p := range probes {
		key := TargetKey{UID: string(e.uid), Name: p.Name}
		if e.ip == "" {
			r.Scheduler.Remove(key)
			continue
		}
		r.Scheduler.Set(key, Target{UID: e.uid, Namespace: pod.Namespace, Pod: pod.Name, Probe: p, IP: e.ip, Timeout: w.Timeout}, w.Period)
	}
}

// Observe records a probe result; it runs on a scheduler worker.
func (r *Reconciler) Observe(ctx context.Context, t Target) {
	start := r.Clock.Now()
	res, skipped := r.Prober.Probe(ctx, t)
	r.Metrics.Duration.Observe(r.Clock.Since(start).Seconds())
	switch {
	case skipped:
		r.Metrics.Probes.WithLabelValues("skipped").Inc()
		return
	case !res.OK:
		r.Metrics.Probes.WithLabelValues("failure").Inc()
	default:
		r.Metrics.Probes.WithLabelValues(string(res.Level)).Inc()
	}
	r.mu.Lock()
	e := r.byID[t.UID]
	r.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	tr := e.trackers[t.Probe.Name]
	changed := tr != nil && tr.Observe(res, e.watchdog)
	var level spec.Level
	if changed {
		level = tr.Status.Level
	}
	e.mu.Unlock()
	if changed {
		r.Metrics.Transitions.WithLabelValues(string(level)).Inc()
		pod := &corev1.Pod{}
		pod.Namespace, pod.Name = t.Namespace, t.Pod
		select {
		case r.Changed <- event.GenericEvent{Object: pod}:
		case <-ctx.Done():
		}
	}
}

func (r *Reconciler) write(ctx context.Context, pod *corev1.Pod, patch Patch) error {
	data, err := patch.MergePatch()
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, data)); err != nil {
		r.Metrics.Writes.WithLabelValues("error").Inc()
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patch watchdog status of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	r.Metrics.Writes.WithLabelValues("ok").Inc()
	r.Log.V(1).Info("recorded watchdog status", "pod", client.ObjectKeyFromObject(pod), "patch", string(data))
	return nil
}

func (r *Reconciler) entry(pod *corev1.Pod) *podEntry {
	key := client.ObjectKeyFromObject(pod)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pods == nil {
		r.pods, r.byID = map[types.NamespacedName]*podEntry{}, map[types.UID]*podEntry{}
	}
	e := r.pods[key]
	if e != nil && e.uid != pod.UID {
		r.forgetLocked(key)
		e = nil
	}
	if e == nil {
		e = &podEntry{key: key, uid: pod.UID, trackers: map[string]*Tracker{}}
		r.pods[key], r.byID[pod.UID] = e, e
	}
	return e
}

func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(key)
}

func (r *Reconciler) forgetLocked(key types.NamespacedName) {
	e := r.pods[key]
	if e == nil {
		return
	}
	delete(r.pods, key)
	delete(r.byID, e.uid)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.probes {
		r.Scheduler.Remove(TargetKey{UID: string(e.uid), Name: p.Name})
	}
	r.setHealth(e, "")
}

// setHealth keeps the pods-by-health gauge; e.mu is held.
func (r *Reconciler) setHealth(e *podEntry, health string) {
	if e.health == health {
		return
	}
	if e.health != "" {
		r.Metrics.Health.WithLabelValues(e.health).Dec()
	}
	if health != "" {
		r.Metrics.Health.WithLabelValues(health).Inc()
	}
	e.health = health
}

func healthAfter(pod *corev1.Pod, p Patch) string {
	if v, ok := p.Labels[spec.LabelHealth]; ok {
		if v == nil {
			return ""
		}
		return *v
	}
	return pod.Labels[spec.LabelHealth]
}

// nextStale is when the freshest-to-expire level goes stale, so the label
// turns unknown even when no result arrives; zero when nothing is fresh.
func nextStale(e *podEntry, now time.Time) time.Duration {
	var next time.Duration
	for _, t := range e.trackers {
		if !t.Fresh(now, e.watchdog) {
			continue
		}
		d := t.LastResult.Add(3*e.watchdog.Period+e.watchdog.Timeout).Sub(now) + time.Second
		if next == 0 || d < next {
			next = d
		}
	}
	return next
}

func hasStatusKeys(pod *corev1.Pod) bool {
	if _, ok := pod.Labels[spec.LabelHealth]; ok {
		return true
	}
	for k := range pod.Annotations {
		if strings.HasPrefix(k, spec.PrefixWatchdogStatus) {
			return true
		}
	}
	return false
}
