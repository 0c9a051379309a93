package eviction

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/autocrane/autocrane/spec"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

func errorSince(ago time.Duration) podOpt {
	return func(p *corev1.Pod) {
		p.Labels[spec.LabelHealth] = string(spec.LevelError)
		p.Annotations[spec.PrefixWatchdogStatus+"alive"] = spec.WatchdogStatus{Level: spec.LevelError, Time: now.Add(-ago), Message: "HTTP 500"}.String()
	}
}

func annotated(k, v string) podOpt { return func(p *corev1.Pod) { p.Annotations[k] = v } }
func notReady(p *corev1.Pod)       { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func terminating(p *corev1.Pod)    { p.DeletionTimestamp = &metav1.Time{Time: now} }
func orphan(p *corev1.Pod)         { p.OwnerReferences = nil }

// pod is a Ready pod of ReplicaSet web.
func pod(name string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: types.UID(name),
			Labels:      map[string]string{spec.LabelHealth: string(spec.LevelInfo)},
			Annotations: map[string]string{},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "rs", Controller: ptr.To(true),
			}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		pod      *corev1.Pod
		others   []*corev1.Pod
		backoff  time.Time
		stopped  bool
		evicted  map[types.UID]bool
		want     Reason
		evict    bool
		retry    time.Duration
		contains string
	}{
		{name: "healthy", pod: pod("a"), want: ReasonHealthy},
		{name: "warning is healthy", pod: pod("a", annotated("x", "y"), func(p *corev1.Pod) { p.Labels[spec.LabelHealth] = "warning" }), want: ReasonHealthy},
		{name: "unknown is not error", pod: pod("a", func(p *corev1.Pod) { p.Labels[spec.LabelHealth] = spec.HealthUnknown }), want: ReasonHealthy},
		{name: "terminating", pod: pod("a", errorSince(time.Hour), terminating), want: ReasonTerminating},
		{name: "opted out", pod: pod("a", errorSince(time.Hour), annotated(spec.KeyWatchdogEvict, "false")), want: ReasonOptedOut, contains: "watchdog.autocrane.io/evict"},
		{name: "no owner", pod: pod("a", errorSince(time.Hour), orphan), want: ReasonNoOwner, contains: "no controller"},
		{name: "stopped after a 500", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b"), pod("c")}, stopped: true, want: ReasonStopped},
		{name: "label without a status waits", pod: pod("a", func(p *corev1.Pod) { p.Labels[spec.LabelHealth] = "error" }), want: ReasonNotYet, retry: waitRecheck},
		{name: "not yet: 29 s of the default 30 s", pod: pod("a", errorSince(29*time.Second)), others: []*corev1.Pod{pod("b")}, want: ReasonNotYet, retry: time.Second},
		{name: "due at exactly 30 s", pod: pod("a", errorSince(30*time.Second)), others: []*corev1.Pod{pod("b"), pod("c")}, want: ReasonEvict, evict: true},
		{name: "evict-after from the annotation", pod: pod("a", errorSince(5*time.Second), annotated(spec.KeyWatchdogEvictAfter, "5s")), others: []*corev1.Pod{pod("b")}, want: ReasonEvict, evict: true},
		{name: "evict-after 2m waits", pod: pod("a", errorSince(time.Minute), annotated(spec.KeyWatchdogEvictAfter, "2m")), want: ReasonNotYet, retry: time.Minute},
		{name: "oldest error counts", pod: pod("a", errorSince(40*time.Second), annotated(spec.PrefixWatchdogStatus+"db", spec.WatchdogStatus{Level: spec.LevelError, Time: now.Add(-5 * time.Second)}.String())), others: []*corev1.Pod{pod("b"), pod("c")}, want: ReasonEvict, evict: true},
		{name: "backing off after a 429", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b")}, backoff: now.Add(7 * time.Second), want: ReasonBackoff, retry: 7 * time.Second},
		{name: "backoff over", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b"), pod("c")}, backoff: now, want: ReasonEvict, evict: true},
		{name: "one of two in error is not a storm", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b")}, want: ReasonEvict, evict: true},
		{name: "a lone pod in error is not a storm", pod: pod("a", errorSince(time.Hour)), want: ReasonEvict, evict: true},
		{name: "two of three in error is a storm", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b", errorSince(time.Minute)), pod("c")}, want: ReasonStormBrake, retry: waitRecheck, contains: "2 of 3 pods"},
		{name: "two of four in error is not", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b", errorSince(time.Minute)), pod("c"), pod("d")}, want: ReasonEvict, evict: true},
		{name: "finished pods do not count", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b", errorSince(time.Minute)), pod("c"), pod("d", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })}, want: ReasonStormBrake, retry: waitRecheck},
		{name: "a replacement starting is in flight", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b", notReady), pod("c")}, want: ReasonInFlight, retry: waitRecheck, contains: "max-in-flight 1"},
		{name: "a terminating sibling is in flight", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b", terminating), pod("c")}, want: ReasonInFlight, retry: waitRecheck},
		{name: "max-in-flight 2 allows a second", pod: pod("a", errorSince(time.Hour), annotated(spec.KeyWatchdogMaxInFlight, "2")), others: []*corev1.Pod{pod("b", terminating), pod("c"), pod("d")}, want: ReasonEvict, evict: true},
		{name: "evicted, its deletion not seen yet", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b"), pod("c")},
			evicted: map[types.UID]bool{"a": true}, want: ReasonTerminating},
		{name: "an evicted sibling is in flight", pod: pod("a", errorSince(time.Hour)), others: []*corev1.Pod{pod("b"), pod("c")},
			evicted: map[types.UID]bool{"b": true}, want: ReasonInFlight, retry: waitRecheck},
		{name: "an unready pod in error is not in flight", pod: pod("a", errorSince(time.Hour), notReady), others: []*corev1.Pod{pod("b"), pod("c")}, want: ReasonEvict, evict: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			siblings := append([]*corev1.Pod{tc.pod}, tc.others...)
			got := Decide(Input{Pod: tc.pod, Siblings: siblings, Now: now, StormShare: 0.5, BackoffUntil: tc.backoff, Stopped: tc.stopped, Evicted: tc.evicted})
			if got.Reason != tc.want || got.Evict != tc.evict || got.RetryAfter != tc.retry {
				t.Errorf("Decide = %+v, want reason %s, evict %v, retry %s", got, tc.want, tc.evict, tc.retry)
			}
			if !strings.Contains(got.Message, tc.contains) {
				t.Errorf("message %q does not contain %q", got.Message, tc.contains)
			}
		})
	}
}

// The storm brake holds as long as the share is above the setting: a
// stricter setting brakes earlier.
func TestStormShareSetting(t *testing.T) {
	p := pod("a", errorSince(time.Hour))
	siblings := []*corev1.Pod{p, pod("b", errorSince(time.Hour)), pod("c"), pod("d"), pod("e")}
	for share, want := range map[float64]Reason{0.5: ReasonEvict, 0.3: ReasonStormBrake, 0.4: ReasonEvict} {
		if got := Decide(Input{Pod: p, Siblings: siblings, Now: now, StormShare: share}); got.Reason != want {
			t.Errorf("share %v: %s, want %s", share, got.Reason, want)
		}
	}
}
