package envtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// Fast tuning for tests: a 1 s period, error after 2 failures, healthy
// after 1 success.
func fastWatchdog(extra ...string) map[string]string {
	ann := map[string]string{
		spec.KeyWatchdogPeriodSeconds:      "1",
		spec.KeyWatchdogTimeoutSeconds:     "1",
		spec.KeyWatchdogUnhealthyThreshold: "2",
		spec.KeyWatchdogHealthyThreshold:   "1",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		ann[extra[i]] = extra[i+1]
	}
	return ann
}

func getPod(ctx context.Context, t *testing.T, ns, name string) (*corev1.Pod, error) {
	t.Helper()
	pod := &corev1.Pod{}
	err := suite.env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod)
	return pod, err
}

// waitHealth waits until the pod's health label is want, and returns the pod.
func waitHealth(ctx context.Context, t *testing.T, ns, name, want string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		p, err := getPod(ctx, t, ns, name)
		if err != nil {
			return false, err
		}
		pod = p
		got := p.Labels[spec.LabelHealth]
		return satisfied(got == want, fmt.Errorf("health %q, want %q; statuses %v", got, want, p.Annotations))
	})
	return pod
}

// startPods creates a watched Deployment, plays the kubelet for its pods
// and waits until each is healthy.
func startPods(ctx context.Context, t *testing.T, ns, name string, replicas int32, port int, annotations map[string]string) (map[string]*workload, []corev1.Pod) {
	t.Helper()
	if err := suite.env.Client.Create(ctx, watchedDeployment(ns, name, replicas, port, annotations)); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	pods := waitPods(ctx, t, ns, name, int(replicas))
	byPod := map[string]*workload{}
	for i := range pods {
		byPod[pods[i].Name] = runPod(ctx, t, &pods[i], port)
	}
	for _, p := range pods {
		waitHealth(ctx, t, ns, p.Name, string(spec.LevelInfo))
	}
	return byPod, pods
}

func TestWatchdogFailureAndRecoveryAreRecorded(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	port := freePort(t)
	w, pods := startPods(ctx, t, ns, "web", 2, port, fastWatchdog(spec.KeyWatchdogEvict, "false"))
	key := spec.PrefixWatchdogStatus + "alive"
	for _, p := range pods {
		pod, _ := getPod(ctx, t, ns, p.Name)
		st, err := spec.ParseWatchdogStatus(pod.Annotations[key])
		if err != nil || st.Level != spec.LevelInfo || st.Message != "HTTP 200" {
			t.Fatalf("status of %s = %q (%v), want info/.../HTTP 200", p.Name, pod.Annotations[key], err)
		}
	}

	// Steady state writes nothing: count the manager's pod writes over
	// five periods.
	before := suite.writes.in(ns)
	time.Sleep(5 * time.Second)
	if after := suite.writes.in(ns); after != before {
		t.Errorf("steady state: the manager wrote %d times to pods in %s, want 0", after-before, ns)
	}

	failed := pods[0].Name
	failAt := time.Now().Truncate(time.Second)
	w[failed].post(t, "/fail")
	pod := waitHealth(ctx, t, ns, failed, string(spec.LevelError))
	st, err := spec.ParseWatchdogStatus(pod.Annotations[key])
	if err != nil || st.Level != spec.LevelError || st.Message != "HTTP 500" {
		t.Fatalf("status = %q (%v), want error/.../HTTP 500", pod.Annotations[key], err)
	}
	// The prober's own record: the transition came within
	// unhealthy-threshold x period, plus one period (whole seconds).
	if lag := st.Time.Sub(failAt); lag > 3*time.Second+time.Second {
		t.Errorf("error recorded %s after the failure began, want at most 2 x 1s + 1s (+1s rounding)", lag)
	}
	if other := waitHealth(ctx, t, ns, pods[1].Name, string(spec.LevelInfo)); other.Annotations[key] != "" && !strings.HasPrefix(other.Annotations[key], "info/") {
		t.Errorf("the healthy pod's status changed: %q", other.Annotations[key])
	}

	w[failed].post(t, "/recover")
	pod = waitHealth(ctx, t, ns, failed, string(spec.LevelInfo))
	if !strings.HasPrefix(pod.Annotations[key], "info/") {
		t.Errorf("status after recovery = %q", pod.Annotations[key])
	}

	// Removing the probe removes its status key and the label.
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"probe.autocrane.io/alive":null}}}`))
	if err := suite.env.Client.Patch(ctx, pod, patch); err != nil {
		t.Fatalf("remove probe: %v", err)
	}
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		p, err := getPod(ctx, t, ns, failed)
		if err != nil {
			return false, err
		}
		_, hasStatus := p.Annotations[key]
		_, hasLabel := p.Labels[spec.LabelHealth]
		return satisfied(!hasStatus && !hasLabel, fmt.Errorf("status %v, label %v still there", hasStatus, hasLabel))
	})
}

// events lists the events.k8s.io Events about an object with a reason.
func events(ctx context.Context, t *testing.T, ns, kind, name, reason string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := suite.env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func waitEvent(ctx context.Context, t *testing.T, ns, kind, name, reason string) eventsv1.Event {
	t.Helper()
	var got []eventsv1.Event
	framework.Eventually(ctx, t, 90*time.Second, func() (bool, error) {
		got = events(ctx, t, ns, kind, name, reason)
		return satisfied(len(got) > 0, fmt.Errorf("no %s event on %s %s", reason, kind, name))
	})
	return got[0]
}

// eventCount counts the occurrences of events: a series counts its repeats.
func eventCount(events []eventsv1.Event) int32 {
	var n int32
	for _, e := range events {
		if e.Series != nil && e.Series.Count > 1 {
			n += e.Series.Count
		} else {
			n++
		}
	}
	return n
}

func createPDB(ctx context.Context, t *testing.T, ns, app string, maxUnavailable int) {
	t.Helper()
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: app},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &intstr.IntOrString{Type: intstr.Int, IntVal: int32(maxUnavailable)},
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
	if err := suite.env.Client.Create(ctx, pdb); err != nil {
		t.Fatalf("create PDB: %v", err)
	}
}

func evictions(t *testing.T, outcome string) float64 {
	t.Helper()
	return counter(t, "autocrane_evictions_total", "outcome", outcome)
}

// counter reads one series of a counter from the manager's registry.
func counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	families, err := suite.metrics.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestErrorPodIsEvictedWithinItsBudget(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	port := freePort(t)
	createPDB(ctx, t, ns, "web", 1)
	w, pods := startPods(ctx, t, ns, "web", 3, port, fastWatchdog(spec.KeyWatchdogEvictAfter, "2s"))

	victim := pods[0].Name
	w[victim].post(t, "/fail")
	waitEvent(ctx, t, ns, "Pod", victim, "Evicted")
	waitEvent(ctx, t, ns, "Deployment", "web", "Evicted")
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		_, err := getPod(ctx, t, ns, victim)
		return satisfied(apierrors.IsNotFound(err), fmt.Errorf("evicted pod still there: %v", err))
	})
	// Evicted once: a reconcile before the cache shows the deletion must not
	// evict again (seen on a real cluster as a second Evicted Event).
	if n := eventCount(events(ctx, t, ns, "Pod", victim, "Evicted")); n != 1 {
		t.Errorf("%d Evicted Events on pod %s, want 1", n, victim)
	}
	// The ReplicaSet replaces it; once it runs, it is watched too.
	var replacement *corev1.Pod
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		for _, p := range podsOf(ctx, t, ns, "web") {
			if _, known := w[p.Name]; !known {
				replacement = &p
				return true, nil
			}
		}
		return false, fmt.Errorf("no replacement yet")
	})
	runPod(ctx, t, replacement, port)
	waitHealth(ctx, t, ns, replacement.Name, string(spec.LevelInfo))
}

func TestBudgetRefusalBacksOffWithAnEvent(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	port := freePort(t)
	createPDB(ctx, t, ns, "web", 0)
	w, pods := startPods(ctx, t, ns, "web", 3, port, fastWatchdog(spec.KeyWatchdogEvictAfter, "1s"))
	blockedBefore := evictions(t, "blocked_budget")

	victim := pods[0].Name
	w[victim].post(t, "/fail")
	ev := waitEvent(ctx, t, ns, "Pod", victim, "EvictionBlocked")
	if !strings.Contains(ev.Note, "PodDisruptionBudget") {
		t.Errorf("event note = %q, want it to name the PodDisruptionBudget", ev.Note)
	}
	if _, err := getPod(ctx, t, ns, victim); err != nil {
		t.Fatalf("the pod was removed despite maxUnavailable 0: %v", err)
	}
	if evictions(t, "blocked_budget") <= blockedBefore {
		t.Errorf("autocrane_evictions_total{outcome=blocked_budget} did not grow")
	}
	// The loop goes on: recovery is still recorded.
	w[victim].post(t, "/recover")
	waitHealth(ctx, t, ns, victim, string(spec.LevelInfo))
}

func TestStormBrakeEvictsNone(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	port := freePort(t)
	createPDB(ctx, t, ns, "web", 3)
	w, pods := startPods(ctx, t, ns, "web", 3, port, fastWatchdog(spec.KeyWatchdogEvictAfter, "4s"))
	evictedBefore := evictions(t, "evicted")
	for _, p := range pods {
		w[p.Name].post(t, "/fail")
	}
	for _, p := range pods {
		waitHealth(ctx, t, ns, p.Name, string(spec.LevelError))
	}
	waitEvent(ctx, t, ns, "Deployment", "web", "EvictionStormBrake")
	if got := len(podsOf(ctx, t, ns, "web")); got != 3 {
		t.Fatalf("%d pods left, want all 3", got)
	}
	for _, p := range pods {
		if _, err := getPod(ctx, t, ns, p.Name); err != nil {
			t.Errorf("pod %s: %v", p.Name, err)
		}
	}
	if got := evictions(t, "evicted"); got != evictedBefore {
		t.Errorf("%v evictions during the storm, want 0", got-evictedBefore)
	}
}

func TestRestartedManagerResumesFromAnnotations(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	port := freePort(t)
	w, pods := startPods(ctx, t, ns, "web", 2, port, fastWatchdog(spec.KeyWatchdogEvict, "false"))
	failed := pods[0].Name
	w[failed].post(t, "/fail")
	before := waitHealth(ctx, t, ns, failed, string(spec.LevelError))
	key := spec.PrefixWatchdogStatus + "alive"

	if err := suite.stopManager(); err != nil {
		t.Fatalf("stop manager: %v", err)
	}
	if err := restartManager(ctx); err != nil {
		t.Fatalf("restart manager: %v", err)
	}
	writes := suite.writes.in(ns)
	// Five periods with the new manager: it resumes from the recorded
	// levels, so nothing changes and nothing is written.
	time.Sleep(5 * time.Second)
	after, err := getPod(ctx, t, ns, failed)
	if err != nil {
		t.Fatal(err)
	}
	if after.Annotations[key] != before.Annotations[key] || after.Labels[spec.LabelHealth] != string(spec.LevelError) {
		t.Errorf("after restart: status %q, label %q; before: %q", after.Annotations[key], after.Labels[spec.LabelHealth], before.Annotations[key])
	}
	if got := suite.writes.in(ns) - writes; got != 0 {
		t.Errorf("the restarted manager wrote %d times, want 0", got)
	}
	w[failed].post(t, "/recover")
	waitHealth(ctx, t, ns, failed, string(spec.LevelInfo))
}

func TestProberConnectsOnlyToThePod(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	var elsewhere atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	t.Cleanup(target.Close)
	dialsBefore := suite.dials.count()

	port := freePort(t)
	ann := fastWatchdog(spec.KeyWatchdogEvict, "false")
	for _, tc := range []struct {
		name   string
		args   []string
		health spec.Level
		status string
	}{
		{name: "redirect", args: []string{"--redirect-watchdog-to=" + target.URL + "/steal"}, health: spec.LevelError, status: "HTTP 302 (redirects are not followed)"},
		{name: "huge", args: []string{"--watchdog-body-bytes=20000000"}, health: spec.LevelInfo, status: "HTTP 200"},
	} {
		pod := appPod(tc.name, watchedDeployment(ns, tc.name, 1, port, ann).Spec.Template.Annotations, nil)
		pod.Namespace = ns
		if err := suite.env.Client.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		runPod(ctx, t, pod, port, tc.args...)
		got := waitHealth(ctx, t, ns, tc.name, string(tc.health))
		st, err := spec.ParseWatchdogStatus(got.Annotations[spec.PrefixWatchdogStatus+"alive"])
		if err != nil || st.Message != tc.status {
			t.Errorf("%s: status %+v (%v), want message %q", tc.name, st, err, tc.status)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
	for host, n := range suite.dials.hostsSince(dialsBefore) {
		if !wasPodIP(host) {
			t.Errorf("the prober dialled %s (%d times), which is no pod's IP", host, n)
		}
	}
}
