package datarollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/autocrane/autocrane/spec"
)

const stateNS = "autocrane-system"

// fakeRepository is a Repository in memory.
type fakeRepository struct {
	mu      sync.Mutex
	catalog Catalog
	err     error
	pinErr  error
	pinned  [][]string
}

func (f *fakeRepository) Source(_ context.Context, baseURL, source string) (Catalog, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if baseURL != testLine.StoreURL || source != testLine.Source {
		return Catalog{}, fmt.Errorf("unknown source %s at %s", source, baseURL)
	}
	if f.err != nil {
		return Catalog{}, f.err
	}
	return f.catalog, nil
}

func (f *fakeRepository) Pin(_ context.Context, _, _ string, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pinErr != nil {
		return f.pinErr
	}
	f.pinned = append(f.pinned, ids)
	f.catalog.Pins = ids
	return nil
}

// eventLog records Events as "Kind/name Reason".
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (e *eventLog) Eventf(regarding, _ runtime.Object, _, reason, _, _ string, _ ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, _ := regarding.(metav1.ObjectMetaAccessor)
	e.events = append(e.events, regarding.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetObjectMeta().GetName()+" "+reason)
}

func (e *eventLog) AnnotatedEventf(regarding, related runtime.Object, _ map[string]string, kind, reason, action, note string, args ...any) {
	e.Eventf(regarding, related, kind, reason, action, note, args...)
}

func (e *eventLog) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.events
	e.events = nil
	return out
}

type fixture struct {
	c      *Controller
	client client.Client
	repo   *fakeRepository
	events *eventLog
	clock  *clocktesting.FakeClock
	reg    *prometheus.Registry
}

// appPod is a pod of the web ReplicaSet (owned by Deployment web) with a
// "models" data deployment; its store URL comes from the namespace.
func appPod(name string, request, status string) *corev1.Pod {
	yes := true
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: testLine.Namespace, Name: name, UID: types.UID("uid-" + name),
		CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour)),
		OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d9c", UID: "uid-web", Controller: &yes}},
		Annotations:       map[string]string{spec.PrefixData + "models": "models"},
		Labels:            map[string]string{"app": "web"},
	}}
	if request != "" {
		p.Annotations[spec.PrefixDataRequest+"models"] = request
	}
	if status != "" {
		p.Annotations[spec.PrefixDataStatus+"models"] = status
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP = "127.0.0.1"
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	return p
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	t.Helper()
	yes := true
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testLine.Namespace, Annotations: map[string]string{spec.KeyStoreURL: testLine.StoreURL}}}
	rs := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
		ObjectMeta: metav1.ObjectMeta{Namespace: testLine.Namespace, Name: "web-5d9c", UID: "uid-web",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "uid-deploy", Controller: &yes}}},
	}
	cl := fake.NewClientBuilder().
		WithObjects(append([]client.Object{ns, rs}, objs...)...).
		WithIndex(&corev1.Pod{}, SourceIndex, indexSources).
		Build()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{client: cl, repo: &fakeRepository{catalog: reachable(1, 2)}, events: &eventLog{}, clock: clocktesting.NewFakeClock(t0), reg: reg}
	f.c = &Controller{
		client: cl, states: cl, stateNS: stateNS, repo: f.repo, recorder: f.events, metrics: m, clock: f.clock,
		log: logr.Discard(), poll: DefaultPollInterval, deadline: DefaultProgressDeadline,
		lines: map[string]Line{}, written: map[string]writeMark{},
	}
	return f
}

// reconcile maps pod to its line, as the pod watch does, and reconciles it.
func (f *fixture) reconcile(t *testing.T) reconcile.Result {
	t.Helper()
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = testLine.Namespace, "web-0"
	pod.Annotations = map[string]string{spec.PrefixData + "models": "models"}
	reqs := f.c.linesOfPod(t.Context(), pod)
	if len(reqs) != 1 || reqs[0].Name != testLine.Name() || reqs[0].Namespace != stateNS {
		t.Fatalf("pod maps to %v, want %s/%s", reqs, stateNS, testLine.Name())
	}
	res, err := f.c.Reconcile(t.Context(), reqs[0])
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (f *fixture) state(t *testing.T) (*corev1.ConfigMap, State) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := f.client.Get(t.Context(), types.NamespacedName{Namespace: stateNS, Name: testLine.Name()}, cm); err != nil {
		t.Fatalf("state ConfigMap: %v", err)
	}
	st, err := ParseState(cm.Data[KeyState], testLine)
	if err != nil {
		t.Fatal(err)
	}
	return cm, st
}

func (f *fixture) requests(t *testing.T) map[string]string {
	t.Helper()
	var pods corev1.PodList
	if err := f.client.List(t.Context(), &pods); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range pods.Items {
		id := "-"
		if r, err := spec.ParseDataRequest(p.Annotations[spec.PrefixDataRequest+"models"]); err == nil {
			id = r.ID
		}
		out[p.Name] = id
	}
	return out
}

func (f *fixture) setPod(t *testing.T, name string, mutate func(*corev1.Pod)) {
	t.Helper()
	p := &corev1.Pod{}
	if err := f.client.Get(t.Context(), types.NamespacedName{Namespace: testLine.Namespace, Name: name}, p); err != nil {
		t.Fatal(err)
	}
	mutate(p)
	if err := f.client.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileRollout(t *testing.T) {
	v1, v2 := ver(1), ver(2)
	live1 := liveStatus(v1, t0.Add(-time.Hour))
	f := newFixture(t,
		appPod("web-0", v1.Request("models"), live1), appPod("web-1", v1.Request("models"), live1),
		appPod("web-2", v1.Request("models"), live1), appPod("web-3", "", ""))

	// No state yet: the pods' version is adopted, the new one starts in
	// wave 1, the pins are set before the pod is moved forward, and the
	// pod without a request gets the last known good version.
	res := f.reconcile(t)
	if res.RequeueAfter < DefaultPollInterval || res.RequeueAfter > DefaultPollInterval*11/10 {
		t.Errorf("requeue after %s, want the poll interval with at most 10%% jitter", res.RequeueAfter)
	}
	cm, st := f.state(t)
	if idOf(st.LKG) != "v1" || st.Rollout == nil || st.Rollout.ID != "v2" {
		t.Fatalf("state %+v", st)
	}
	if diff := cmp.Diff(map[string]string{LabelState: "true", LabelNamespace: "team-a", LabelSource: "models"}, cm.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if cm.Annotations[AnnotationStoreURL] != testLine.StoreURL {
		t.Errorf("annotations %v", cm.Annotations)
	}
	if diff := cmp.Diff(map[string]string{"web-0": "v2", "web-1": "v1", "web-2": "v1", "web-3": "v1"}, f.requests(t)); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"v1", "v2"}}, f.repo.pinned); diff != "" {
		t.Errorf("pins (-want +got):\n%s", diff)
	}
	wantEvents := []string{"Deployment/web DataAdopted", "Deployment/web DataRolloutStarted", "Deployment/web DataWaveStarted"}
	if diff := cmp.Diff(wantEvents, f.events.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Nothing changed: nothing is written.
	rv := cm.ResourceVersion
	f.reconcile(t)
	if cm, _ := f.state(t); cm.ResourceVersion != rv {
		t.Error("the state was written without a change")
	}
	if len(f.repo.pinned) != 1 || len(f.events.take()) != 0 {
		t.Error("pinned again or recorded events without a change")
	}

	// web-0 goes live and then to error: everything on v2 goes back.
	f.clock.Step(time.Minute)
	f.setPod(t, "web-0", func(p *corev1.Pod) {
		p.Annotations[spec.PrefixDataStatus+"models"] = liveStatus(v2, f.clock.Now())
		p.Annotations[spec.PrefixWatchdogStatus+"web"] = spec.WatchdogStatus{Level: spec.LevelError, Time: f.clock.Now().Add(time.Second), Message: "HTTP 500"}.String()
		p.Labels[spec.LabelHealth] = "error"
	})
	f.clock.Step(time.Minute)
	f.reconcile(t)
	if diff := cmp.Diff(map[string]string{"web-0": "v1", "web-1": "v1", "web-2": "v1", "web-3": "v1"}, f.requests(t)); diff != "" {
		t.Errorf("requests after the error (-want +got):\n%s", diff)
	}
	if _, st := f.state(t); !st.IsBad("v2") || st.Rollout != nil {
		t.Errorf("state after the error %+v", st)
	}
	if diff := cmp.Diff([]string{"Deployment/web DataWaveFailed", "Deployment/web DataRolledBack"}, f.events.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(f.c.metrics.Rollbacks); got != 1 {
		t.Errorf("rollbacks %v", got)
	}
	if got := testutil.ToFloat64(f.c.metrics.Versions.WithLabelValues("bad")); got != 1 {
		t.Errorf("bad versions %v", got)
	}
	if n := testutil.CollectAndCount(f.c.metrics.Duration); n != 2 {
		t.Errorf("duration series %d", n)
	}

	// A new pod is admitted with the last known good version.
	podSpec, _ := spec.ParsePod(spec.Namespace{Name: "team-a", Annotations: map[string]string{spec.KeyStoreURL: testLine.StoreURL}},
		map[string]string{spec.PrefixData + "models": "models", spec.PrefixData + "other": "other"})
	got, err := f.c.InitialRequests(t.Context(), "team-a", podSpec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]spec.DataRequest{"models": {Source: "models", ID: "v1", Digest: v1.Digest}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("initial requests (-want +got):\n%s", diff)
	}
}

func TestReconcilePinFailureHoldsForward(t *testing.T) {
	v1 := ver(1)
	live1 := liveStatus(v1, t0.Add(-time.Hour))
	st := State{Line: testLine, Schema: stateSchema, LKG: lkg(v1)}
	data, _ := st.Marshal()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stateNS, Name: testLine.Name(), Labels: map[string]string{LabelState: "true"}}, Data: map[string]string{KeyState: data}}
	f := newFixture(t, cm, appPod("web-0", v1.Request("models"), live1), appPod("web-1", "", ""))
	f.repo.pinErr = errors.New("repository read-only")
	res := f.reconcile(t)
	if res.RequeueAfter != pinRetry {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, pinRetry)
	}
	// The state moved on and the new pod got the last known good version,
	// but no pod was moved to v2 while v2 is not pinned.
	if _, st := f.state(t); st.Rollout == nil || st.Rollout.ID != "v2" {
		t.Errorf("state %+v", st)
	}
	if diff := cmp.Diff(map[string]string{"web-0": "v1", "web-1": "v1"}, f.requests(t)); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	f.repo.pinErr = nil
	f.reconcile(t)
	if diff := cmp.Diff(map[string]string{"web-0": "v2", "web-1": "v1"}, f.requests(t)); diff != "" {
		t.Errorf("requests once pinned (-want +got):\n%s", diff)
	}
}

// staleReader serves one old copy of the state ConfigMap, as a lagging
// cache would after someone else's write.
type staleReader struct {
	client.Reader
	old *corev1.ConfigMap
}

func (s staleReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if cm, ok := obj.(*corev1.ConfigMap); ok && key.Name == s.old.Name {
		s.old.DeepCopyInto(cm)
		return nil
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

func TestReconcileConflictWritesNothing(t *testing.T) {
	v1 := ver(1)
	data, _ := State{Line: testLine, LKG: lkg(v1)}.Marshal()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stateNS, Name: testLine.Name(), Labels: map[string]string{LabelState: "true"}}, Data: map[string]string{KeyState: data}}
	f := newFixture(t, cm, appPod("web-0", v1.Request("models"), liveStatus(v1, t0)))
	old := &corev1.ConfigMap{}
	if err := f.client.Get(t.Context(), client.ObjectKeyFromObject(cm), old); err != nil {
		t.Fatal(err)
	}
	// An operator pauses the line; this replica's cache has not seen it.
	paused := old.DeepCopy()
	paused.Data[KeyPaused] = "true"
	if err := f.client.Update(t.Context(), paused); err != nil {
		t.Fatal(err)
	}
	f.c.states = staleReader{Reader: f.client, old: old}
	res := f.reconcile(t)
	if res.RequeueAfter != staleRetry {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, staleRetry)
	}
	if diff := cmp.Diff(map[string]string{"web-0": "v1"}, f.requests(t)); diff != "" {
		t.Errorf("a pod moved on a state that was not written (-want +got):\n%s", diff)
	}
	if len(f.events.take())+len(f.repo.pinned) != 0 {
		t.Error("events or pins on a state that was not written")
	}
	// With the fresh state the pause holds.
	f.c.states = f.client
	f.reconcile(t)
	if cm, st := f.state(t); st.Rollout != nil || cm.Data[KeyPaused] != "true" {
		t.Errorf("the pause was lost: %+v", st)
	}
}

func TestReconcileInvalidStateFreezes(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stateNS, Name: testLine.Name(), Labels: map[string]string{LabelState: "true"}},
		Data: map[string]string{KeyState: `{"schema": 1, "namespace": "team-a", "storeURL": "` + testLine.StoreURL + `", "source": "models", "lkg": {"id": "BAD"}}`}}
	f := newFixture(t, cm, appPod("web-0", "", ""))
	f.reconcile(t)
	got := &corev1.ConfigMap{}
	if err := f.client.Get(t.Context(), client.ObjectKeyFromObject(cm), got); err != nil {
		t.Fatal(err)
	}
	if got.Data[KeyState] != cm.Data[KeyState] || f.requests(t)["web-0"] != "-" {
		t.Error("an invalid state was overwritten or acted on")
	}
}

func TestStatusReconcile(t *testing.T) {
	v2 := ver(2)
	port, _ := deployerServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, deployerBody) })
	f := newFixture(t, appPod("web-0", v2.Request("models"), "syncing/-/-/-/"))
	sr := &statusReconciler{client: f.client, metrics: f.c.metrics, log: logr.Discard(), interval: 5 * time.Second, resync: time.Minute}
	sr.reader = NewStatusReader(port, 5*time.Second, nil, sr.currentIP)
	key := types.NamespacedName{Namespace: testLine.Namespace, Name: "web-0"}
	res, err := sr.Reconcile(t.Context(), reconcile.Request{NamespacedName: key})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := f.client.Get(t.Context(), key, pod); err != nil {
		t.Fatal(err)
	}
	if got, want := pod.Annotations[spec.PrefixDataStatus+"models"], liveStatus(v2, t0.Add(-time.Minute)); got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	if res.RequeueAfter != time.Minute {
		t.Errorf("requeue after %s, want the resync once live on the request", res.RequeueAfter)
	}
	if keys := slices.Sorted(func(yield func(string) bool) {
		for k := range pod.Annotations {
			if !yield(k) {
				return
			}
		}
	}); len(keys) != 3 {
		t.Errorf("annotations %v: only the status key may be added", keys)
	}
}

// TestReconcileWaitsForOwnWrite: after a write, a cache that still shows
// the replaced ConfigMap is not decided on. Here the stale state (no
// rollout) with an unreachable repository would decide nothing to write,
// and move web-0, which the write sent to v2, back to v1.
func TestReconcileWaitsForOwnWrite(t *testing.T) {
	v1 := ver(1)
	data, _ := State{Line: testLine, LKG: lkg(v1)}.Marshal()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stateNS, Name: testLine.Name(), Labels: map[string]string{LabelState: "true"}}, Data: map[string]string{KeyState: data}}
	f := newFixture(t, cm, appPod("web-0", v1.Request("models"), liveStatus(v1, t0)), appPod("web-1", v1.Request("models"), liveStatus(v1, t0)))
	old := &corev1.ConfigMap{}
	if err := f.client.Get(t.Context(), client.ObjectKeyFromObject(cm), old); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t) // starts v2: writes the state, moves web-0
	want := map[string]string{"web-0": "v2", "web-1": "v1"}
	if diff := cmp.Diff(want, f.requests(t)); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
	f.c.states = staleReader{Reader: f.client, old: old}
	f.repo.err = errors.New("connection refused")
	if res := f.reconcile(t); res.RequeueAfter != staleRetry {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, staleRetry)
	}
	if diff := cmp.Diff(want, f.requests(t)); diff != "" {
		t.Errorf("decided on a stale state (-want +got):\n%s", diff)
	}
	f.c.states = f.client
	f.reconcile(t)
	if diff := cmp.Diff(want, f.requests(t)); diff != "" {
		t.Errorf("requests once the cache caught up (-want +got):\n%s", diff)
	}
}

func TestTrigger(t *testing.T) {
	f := newFixture(t)
	f.c.trigger = make(chan event.GenericEvent, 4)
	pod := appPod("web-0", "", "")
	f.c.linesOfPod(t.Context(), pod)
	f.c.Trigger("http://elsewhere:9790", "models")
	f.c.Trigger(testLine.StoreURL, "other")
	f.c.Trigger(testLine.StoreURL, "models")
	if n := len(f.c.trigger); n != 1 {
		t.Fatalf("%d lines triggered, want 1", n)
	}
	got := (<-f.c.trigger).Object
	if got.GetNamespace() != stateNS || got.GetName() != testLine.Name() {
		t.Errorf("triggered %s/%s, want %s/%s", got.GetNamespace(), got.GetName(), stateNS, testLine.Name())
	}
	// A full queue drops the trigger rather than block: the poll does the work.
	for range 10 {
		f.c.Trigger(testLine.StoreURL, "models")
	}
}
