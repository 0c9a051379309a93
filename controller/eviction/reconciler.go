package eviction

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/autocrane/autocrane/controller"
)

// Reconciler evicts pods as Decide says, one API call per decision.
type Reconciler struct {
	Client   client.Client
	Recorder recorder.EventRecorder
	Metrics  *Metrics
	Clock    clock.PassiveClock
	Log      logr.Logger
	// StormShare is the storm brake's share of an owner's pods.
	StormShare float64
	// Limiter is the global eviction rate limit.
	Limiter *rate.Limiter
	// DryRun logs and records Events without evicting.
	DryRun bool

	mu      sync.Mutex
	backoff map[types.UID]backoff
	stopped map[types.UID]bool
	noted   map[types.UID]Reason
	// evicted maps each pod this controller evicted to its UID, until the
	// pod is gone: the cache shows a deletion a moment after the eviction.
	evicted map[types.NamespacedName]types.UID
}

type backoff struct {
	until time.Time
	step  time.Duration
}

// Budget refusals back off exponentially, with jitter, between these.
const (
	minBackoff = 5 * time.Second
	maxBackoff = 5 * time.Minute
)

// Reconcile decides about one pod and acts.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := r.Client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.mu.Lock()
			delete(r.evicted, req.NamespacedName)
			r.mu.Unlock()
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get pod: %w", err)
	}
	in := Input{Pod: pod, Now: r.Clock.Now(), StormShare: r.StormShare}
	if owner := controller.ControllerOf(pod); owner != nil {
		var siblings corev1.PodList
		if err := r.Client.List(ctx, &siblings, client.InNamespace(pod.Namespace), client.MatchingFields{controller.OwnerIndex: string(owner.UID)}); err != nil {
			return ctrl.Result{}, fmt.Errorf("list pods of owner %s: %w", owner.Name, err)
		}
		for i := range siblings.Items {
			in.Siblings = append(in.Siblings, &siblings.Items[i])
		}
	}
	r.mu.Lock()
	in.BackoffUntil = r.backoff[pod.UID].until
	in.Stopped = r.stopped[pod.UID]
	in.Evicted = make(map[types.UID]bool, len(r.evicted))
	for _, uid := range r.evicted {
		in.Evicted[uid] = true
	}
	r.mu.Unlock()

	d := Decide(in)
	r.noteOnce(ctx, pod, d)
	if !d.Evict {
		return ctrl.Result{RequeueAfter: d.RetryAfter}, nil
	}
	if res := r.Limiter.Reserve(); !res.OK() || res.Delay() > 0 {
		delay := res.Delay()
		res.Cancel()
		r.Metrics.Brakes.WithLabelValues("rate_limit").Inc()
		return ctrl.Result{RequeueAfter: max(delay, time.Second)}, nil
	}
	return r.evict(ctx, pod, d)
}

func (r *Reconciler) evict(ctx context.Context, pod *corev1.Pod, d Decision) (ctrl.Result, error) {
	log := r.Log.WithValues("pod", client.ObjectKeyFromObject(pod))
	if r.DryRun {
		log.Info("would evict (dry run)", "why", d.Message)
		r.Metrics.Evictions.WithLabelValues("dry_run").Inc()
		r.event(ctx, pod, corev1.EventTypeNormal, "WouldEvict", "dry run, not evicted: "+d.Message)
		r.setBackoff(pod.UID, maxBackoff)
		return ctrl.Result{RequeueAfter: maxBackoff}, nil
	}
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace}}
	err := r.Client.SubResource("eviction").Create(ctx, pod, eviction)
	switch {
	case err == nil:
		log.Info("evicted", "why", d.Message)
		r.Metrics.Evictions.WithLabelValues("evicted").Inc()
		r.event(ctx, pod, corev1.EventTypeNormal, "Evicted", "evicted through the Eviction API: "+d.Message)
		r.forget(pod.UID)
		r.mu.Lock()
		r.evicted[client.ObjectKeyFromObject(pod)] = pod.UID
		r.mu.Unlock()
		return ctrl.Result{}, nil
	case apierrors.IsNotFound(err):
		r.Metrics.Evictions.WithLabelValues("gone").Inc()
		r.forget(pod.UID)
		return ctrl.Result{}, nil
	case apierrors.IsTooManyRequests(err):
		wait := r.bumpBackoff(pod.UID)
		log.Info("eviction refused by the disruption budget; backing off", "retryAfter", wait)
		r.Metrics.Evictions.WithLabelValues("blocked_budget").Inc()
		r.event(ctx, pod, corev1.EventTypeWarning, "EvictionBlocked",
			fmt.Sprintf("eviction refused by the PodDisruptionBudget (%s); retrying in %s", shortError(err), wait.Round(time.Second)))
		return ctrl.Result{RequeueAfter: wait}, nil
	case apierrors.IsInternalError(err):
		// Several budgets match the pod: the API server will refuse every
		// eviction of it until someone fixes the budgets.
		r.mu.Lock()
		r.stopped[pod.UID] = true
		r.mu.Unlock()
		r.Metrics.Evictions.WithLabelValues("failed").Inc()
		r.event(ctx, pod, corev1.EventTypeWarning, "EvictionFailed",
			fmt.Sprintf("eviction failed and will not be retried for this pod: %s", shortError(err)))
		return ctrl.Result{}, nil
	default:
		r.Metrics.Evictions.WithLabelValues("failed").Inc()
		return ctrl.Result{}, fmt.Errorf("evict %s/%s: %w", pod.Namespace, pod.Name, err)
	}
}

// noteOnce records an Event when a brake or opt-out first holds a pod in
// error, and again only when the reason changes, so a waiting pod does not
// flood its Events.
func (r *Reconciler) noteOnce(ctx context.Context, pod *corev1.Pod, d Decision) {
	var brake string
	switch d.Reason {
	case ReasonStormBrake:
		brake = "storm"
	case ReasonInFlight:
		brake = "max_in_flight"
	case ReasonOptedOut:
		brake = "opted_out"
	case ReasonNoOwner:
		brake = "no_owner"
	}
	r.mu.Lock()
	prev := r.noted[pod.UID]
	if brake == "" {
		if d.Reason == ReasonHealthy {
			delete(r.noted, pod.UID)
		}
		r.mu.Unlock()
		return
	}
	r.noted[pod.UID] = d.Reason
	r.mu.Unlock()
	if prev == d.Reason {
		return
	}
	r.Metrics.Brakes.WithLabelValues(brake).Inc()
	r.event(ctx, pod, corev1.EventTypeWarning, string(d.Reason), d.Message)
}

// event records on the pod and on its owner: the Deployment when the
// owner is a ReplicaSet that one controls.
func (r *Reconciler) event(ctx context.Context, pod *corev1.Pod, kind, reason, note string) {
	r.Recorder.Eventf(pod, nil, kind, reason, "Evict", "%s", note)
	if owner := r.topOwner(ctx, pod); owner != nil {
		r.Recorder.Eventf(owner, pod, kind, reason, "Evict", "pod %s: %s", pod.Name, note)
	}
}

func (r *Reconciler) topOwner(ctx context.Context, pod *corev1.Pod) runtime.Object {
	ref := controller.ControllerOf(pod)
	if ref == nil {
		return nil
	}
	return controller.WorkloadOf(ctx, r.Client, pod.Namespace, *ref)
}

func (r *Reconciler) bumpBackoff(uid types.UID) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	step := min(max(r.backoff[uid].step*2, minBackoff), maxBackoff)
	wait := step/2 + rand.N(step/2+1)
	r.backoff[uid] = backoff{until: r.Clock.Now().Add(wait), step: step}
	return wait
}

func (r *Reconciler) setBackoff(uid types.UID, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.backoff[uid] = backoff{until: r.Clock.Now().Add(d), step: d}
}

func (r *Reconciler) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.backoff, uid)
	delete(r.stopped, uid)
	delete(r.noted, uid)
}

// shortError is the API server's message, bounded.
func shortError(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}
