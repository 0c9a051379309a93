package eviction

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/spec"
)

// Reason says why Decide chose what it did; it is also the Event reason.
type Reason string

// The reasons.
const (
	ReasonHealthy     Reason = "Healthy"
	ReasonTerminating Reason = "Terminating"
	ReasonOptedOut    Reason = "EvictionOptedOut"
	ReasonNoOwner     Reason = "EvictionNoOwner"
	ReasonNotYet      Reason = "EvictionPending"
	ReasonStormBrake  Reason = "EvictionStormBrake"
	ReasonInFlight    Reason = "EvictionInFlight"
	ReasonBackoff     Reason = "EvictionBackoff"
	ReasonStopped     Reason = "EvictionStopped"
	ReasonEvict       Reason = "Evict"
)

// Decision is what to do with one pod now.
type Decision struct {
	Evict  bool
	Reason Reason
	// Message explains the decision in a sentence, for Events and logs.
	Message string
	// RetryAfter is when to look again; 0 means only on the next change.
	RetryAfter time.Duration
}

// Input is everything Decide reads.
type Input struct {
	Pod *corev1.Pod
	// Siblings are the pods of the same controller owner, Pod included.
	Siblings []*corev1.Pod
	Now      time.Time
	// StormShare: when more than this share of an owner's pods (and at
	// least two) are in error, evict none.
	StormShare float64
	// BackoffUntil is when a budget refusal lets this pod be tried again.
	BackoffUntil time.Time
	// Stopped is true after an error that retrying cannot fix.
	Stopped bool
	// Evicted holds the pods this controller evicted whose deletion the
	// cache may not show yet: they count as terminating, so that a
	// reconcile in that window neither evicts one twice nor lets a
	// sibling go beyond max-in-flight.
	Evicted map[types.UID]bool
}

// waitRecheck is how often a waiting decision is looked at again when no
// pod change triggers it earlier.
const waitRecheck = 10 * time.Second

// Decide chooses whether to evict in.Pod now. The order of the checks is
// the order of their precedence: a pod AutoCrane must not touch is never
// evicted, whatever the brakes say.
func Decide(in Input) Decision {
	pod := in.Pod
	if pod.DeletionTimestamp != nil || in.Evicted[pod.UID] {
		return Decision{Reason: ReasonTerminating}
	}
	if pod.Labels[spec.LabelHealth] != string(spec.LevelError) {
		return Decision{Reason: ReasonHealthy}
	}
	w, _ := spec.ParseWatchdog(pod.Annotations)
	if !w.Evict {
		return Decision{Reason: ReasonOptedOut, Message: fmt.Sprintf("pod is in error but not evicted: %s is \"false\"", spec.KeyWatchdogEvict)}
	}
	if controller.ControllerOf(pod) == nil {
		return Decision{Reason: ReasonNoOwner, Message: "pod is in error but not evicted: it has no controller that would replace it"}
	}
	if in.Stopped {
		return Decision{Reason: ReasonStopped}
	}
	since, ok := spec.ErrorSince(pod.Annotations)
	if !ok {
		// The label says error but no status does (a posted status was
		// just removed): wait for the prober to catch up.
		return Decision{Reason: ReasonNotYet, Message: "health is error but no watchdog status is", RetryAfter: waitRecheck}
	}
	if due := since.Add(w.EvictAfter); in.Now.Before(due) {
		return Decision{Reason: ReasonNotYet, Message: fmt.Sprintf("in error since %s; eviction due at %s", since.Format(time.RFC3339), due.Format(time.RFC3339)), RetryAfter: due.Sub(in.Now)}
	}
	if in.Now.Before(in.BackoffUntil) {
		return Decision{Reason: ReasonBackoff, RetryAfter: in.BackoffUntil.Sub(in.Now)}
	}
	total, failing, inFlight := count(in.Siblings, pod, in.Evicted)
	if failing >= 2 && float64(failing) > in.StormShare*float64(total) {
		return Decision{Reason: ReasonStormBrake, RetryAfter: waitRecheck, Message: fmt.Sprintf(
			"%d of %d pods of the owner are in error at once (more than %.0f%%): a shared cause, not bad pods; evicting none", failing, total, in.StormShare*100)}
	}
	if inFlight >= w.MaxInFlight {
		return Decision{Reason: ReasonInFlight, RetryAfter: waitRecheck, Message: fmt.Sprintf(
			"%d of the owner's pods are being replaced (max-in-flight %d); waiting for them to be Ready", inFlight, w.MaxInFlight)}
	}
	return Decision{Evict: true, Reason: ReasonEvict, Message: fmt.Sprintf("watchdogs in error since %s, longer than %s", since.Format(time.RFC3339), w.EvictAfter)}
}

// count returns the owner's live pods, those in error, and those in flight:
// terminating, or not Ready and not in error (a replacement starting up).
func count(siblings []*corev1.Pod, self *corev1.Pod, evicted map[types.UID]bool) (total, failing, inFlight int) {
	for _, p := range siblings {
		if p.DeletionTimestamp != nil || evicted[p.UID] {
			inFlight++
			continue
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		total++
		switch {
		case p.Labels[spec.LabelHealth] == string(spec.LevelError):
			failing++
		case p.UID != self.UID && !controller.PodReady(p):
			inFlight++
		}
	}
	return total, failing, inFlight
}
