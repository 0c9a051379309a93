package envtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

// podChange is one state of one pod, as a watch delivered it.
type podChange struct {
	at      time.Time
	pod     string
	deleted bool
	// request and status are the models deployment's
	// request.data.autocrane.io and status.data.autocrane.io values.
	request string
	status  string
}

// fakeKubelet watches the pods of one namespace. It plays the kubelet's
// downward API volume: for every pod it serves, it rewrites the pod's
// annotations file (podinfo.WriteLikeKubelet, as the kubelet swaps its
// ..data link) whenever the pod's annotations change in the API, at once
// (a real kubelet takes up to about a minute). And it records every change
// of the pods, in the API server's order, for the assertions.
type fakeKubelet struct {
	mu      sync.Mutex
	latest  map[string]*corev1.Pod
	dirs    map[string]string
	written map[string]map[string]string
	changes []podChange
	err     error
}

// startKubelet starts watching ns; the watch begins before it returns, so
// every later change is seen.
func startKubelet(ctx context.Context, t *testing.T, ns string) *fakeKubelet {
	t.Helper()
	cs, err := kubernetes.NewForConfig(suite.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	k := &fakeKubelet{latest: map[string]*corev1.Pod{}, dirs: map[string]string{}, written: map[string]map[string]string{}}
	for i := range list.Items {
		k.observe(watch.Added, &list.Items[i])
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.run(wctx, cs, ns, list.ResourceVersion)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return k
}

// run follows the pods from resourceVersion rv on, resuming the watch
// where it ended when the API server closes it.
func (k *fakeKubelet) run(ctx context.Context, cs kubernetes.Interface, ns, rv string) {
	for ctx.Err() == nil {
		w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if ctx.Err() == nil {
				k.fail(fmt.Errorf("watch pods: %w", err))
			}
			return
		}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				// An error event (410 Gone): the history has a hole, and
				// the assertions on it would mean nothing.
				k.fail(fmt.Errorf("pod watch ended with %v", ev.Object))
				w.Stop()
				return
			}
			rv = pod.ResourceVersion
			if ev.Type != watch.Bookmark {
				k.observe(ev.Type, pod)
			}
		}
		w.Stop()
	}
}

func (k *fakeKubelet) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil {
		k.err = err
	}
}

// check fails t if the watch or a file write failed.
func (k *fakeKubelet) check(t *testing.T) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		t.Fatalf("fake kubelet: %v", k.err)
	}
}

func (k *fakeKubelet) observe(typ watch.EventType, pod *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := podChange{at: time.Now(), pod: pod.Name, deleted: typ == watch.Deleted,
		request: pod.Annotations[spec.PrefixDataRequest+"models"], status: pod.Annotations[spec.PrefixDataStatus+"models"]}
	k.changes = append(k.changes, c)
	if c.deleted {
		delete(k.latest, pod.Name)
		return
	}
	k.latest[pod.Name] = pod
	k.writeLocked(pod.Name)
}

// writeLocked rewrites a served pod's annotations file if they changed.
func (k *fakeKubelet) writeLocked(name string) {
	dir, ok := k.dirs[name]
	pod := k.latest[name]
	if !ok || pod == nil || maps.Equal(k.written[name], pod.Annotations) {
		return
	}
	if err := podinfo.WriteLikeKubelet(dir, "annotations", pod.Annotations); err != nil {
		if k.err == nil {
			k.err = fmt.Errorf("write the annotations of pod %s: %w", name, err)
		}
		return
	}
	k.written[name] = maps.Clone(pod.Annotations)
}

// serve starts keeping pod's annotations file in dir up to date, writing
// it now (from the newest of the watch's view and pod).
func (k *fakeKubelet) serve(t *testing.T, pod *corev1.Pod, dir string) {
	t.Helper()
	k.mu.Lock()
	k.dirs[pod.Name] = dir
	if k.latest[pod.Name] == nil {
		k.latest[pod.Name] = pod.DeepCopy()
	}
	k.writeLocked(pod.Name)
	k.mu.Unlock()
	k.check(t)
}

// history is every change seen so far; mark is its length now, to look at
// what happens after a point.
func (k *fakeKubelet) history() []podChange {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]podChange(nil), k.changes...)
}

func (k *fakeKubelet) mark() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.changes)
}

// pods are the current pods, by name.
func (k *fakeKubelet) pods() map[string]*corev1.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]*corev1.Pod, len(k.latest))
	for n, p := range k.latest {
		out[n] = p.DeepCopy()
	}
	return out
}

// requests says whether a request.data value asks for v.
func requests(value string, v datarollout.Version) bool {
	r, err := spec.ParseDataRequest(value)
	return err == nil && r.ID == v.ID && r.Digest == v.Digest
}

// liveOn parses a status.data value and reports whether it holds v live.
func liveOn(value string, v datarollout.Version) (time.Time, bool) {
	st, err := spec.ParseDataStatus(value)
	if err != nil || st.State != spec.DataLive || st.Version != v.ID || st.Digest != v.Digest {
		return time.Time{}, false
	}
	return st.Since, true
}

// observedWave is one wave of a rollout as the pods' request annotations
// show it.
type observedWave struct {
	// size is how many pods requested the version at the wave's end.
	size int
}

// observeWaves splits the requests for v in changes into waves. A wave
// asks its pods in one decision, one patch after the other; a datadeployer
// may go live in between. So a request for v begins a new wave only when
// every pod that already requested v was live on it and the latest of
// their SINCEs is at least bake ago, which is when the controller may
// begin the next wave (docs/data.md); any other request extends the
// current wave. A wave begun before the one before it was live and had
// baked therefore shows as part of it, and the sizes come out wrong. It
// also returns the pods whose request left v.
func observeWaves(changes []podChange, v datarollout.Version, bake time.Duration) (waves []observedWave, movedOff []string) {
	on := map[string]bool{}
	since := map[string]time.Time{}
	for _, c := range changes {
		if c.deleted {
			delete(on, c.pod)
			delete(since, c.pod)
			continue
		}
		if s, ok := liveOn(c.status, v); ok {
			since[c.pod] = s
		} else {
			delete(since, c.pod)
		}
		was, is := on[c.pod], requests(c.request, v)
		if was && !is {
			movedOff = append(movedOff, c.pod)
		}
		if is && !was {
			var latest time.Time
			baked := len(on) > 0
			for p := range on {
				s, ok := since[p]
				baked = baked && ok
				if s.After(latest) {
					latest = s
				}
			}
			baked = baked && !c.at.Before(latest.Add(bake))
			if len(waves) == 0 || baked {
				waves = append(waves, observedWave{})
			}
			waves[len(waves)-1].size = len(on) + 1
		}
		if is {
			on[c.pod] = true
		} else {
			delete(on, c.pod)
		}
	}
	return waves, movedOff
}

// formatHistory renders changes for a failure message: one line per change
// of a pod's request or status.
func formatHistory(changes []podChange) string {
	var b strings.Builder
	last := map[string]podChange{}
	for _, c := range changes {
		if prev, ok := last[c.pod]; ok && prev.request == c.request && prev.status == c.status && prev.deleted == c.deleted {
			continue
		}
		last[c.pod] = c
		fmt.Fprintf(&b, "\n  %s %s deleted=%v request=%q status=%q", c.at.Format("15:04:05.000"), c.pod, c.deleted, c.request, c.status)
	}
	return b.String()
}

// TestDataObserveWaves checks how the test tells waves apart, on
// histories such as the API server delivers.
func TestDataObserveWaves(t *testing.T) {
	v1 := datarollout.Version{ID: "v1", Digest: "sha256:" + strings.Repeat("1", 64)}
	v2 := datarollout.Version{ID: "v2", Digest: "sha256:" + strings.Repeat("2", 64)}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	// asked is pod asked for v at ms; live is pod live on v since the
	// whole second before ms, seen at ms.
	asked := func(at int, pod string, v datarollout.Version) podChange {
		return podChange{at: ms(at), pod: pod, request: v.Request("models")}
	}
	live := func(at int, pod string, v datarollout.Version) podChange {
		c := asked(at, pod, v)
		c.status = spec.DataStatus{State: spec.DataLive, Version: v.ID, Digest: v.Digest, Since: ms(at).Truncate(time.Second)}.String()
		return c
	}
	for _, tc := range []struct {
		name     string
		changes  []podChange
		sizes    []int
		movedOff []string
	}{
		{name: "waves of 1, 2 and 4", changes: []podChange{
			asked(0, "a", v2), live(1100, "a", v2),
			asked(4500, "b", v2), live(5100, "b", v2),
			asked(8100, "c", v2), asked(8150, "d", v2), live(9000, "c", v2), live(9000, "d", v2),
		}, sizes: []int{1, 2, 4}},
		{name: "a pod goes live between two requests of one wave", changes: []podChange{
			asked(0, "a", v2), live(1100, "a", v2),
			asked(4500, "b", v2), live(4600, "b", v2),
			asked(8100, "c", v2), live(8140, "c", v2), asked(8150, "d", v2),
		}, sizes: []int{1, 2, 4}},
		{name: "a wave before the bake joins the one before", changes: []podChange{
			asked(0, "a", v2), live(1100, "a", v2), asked(2000, "b", v2),
		}, sizes: []int{2}},
		{name: "a wave before live joins the one before", changes: []podChange{
			asked(0, "a", v2), asked(9000, "b", v2),
		}, sizes: []int{2}},
		{name: "a pod goes back", changes: []podChange{
			live(0, "a", v1), live(0, "b", v1), asked(100, "a", v2), live(1100, "a", v2), live(2000, "a", v1),
		}, sizes: []int{1}, movedOff: []string{"a"}},
		{name: "a pod that replaces a deleted one joins the wave", changes: []podChange{
			asked(0, "a", v2), live(1100, "a", v2), {at: ms(1200), pod: "a", deleted: true}, asked(1300, "b", v2),
		}, sizes: []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waves, movedOff := observeWaves(tc.changes, v2, 3*time.Second)
			var sizes []int
			for _, w := range waves {
				sizes = append(sizes, w.size)
			}
			if !slices.Equal(sizes, tc.sizes) || !slices.Equal(movedOff, tc.movedOff) {
				t.Errorf("waves %v, moved off %v; want %v, %v", sizes, movedOff, tc.sizes, tc.movedOff)
			}
		})
	}
}
