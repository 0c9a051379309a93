package datarollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// stalePods serves an old list of pods, as a pod cache that has not yet
// seen the controller's own request patches.
type stalePods struct {
	client.Client
	old *corev1.PodList
}

func (s stalePods) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if pods, ok := list.(*corev1.PodList); ok {
		s.old.DeepCopyInto(pods)
		return nil
	}
	return s.Client.List(ctx, list, opts...)
}

// TestReconcileWaitsForOwnRequests: a wave asks its pods once. A decision
// made before the pod cache shows the requests just written would find
// nobody on the version and ask again, here another pod (web-0 turned
// unready meanwhile, so web-1 ranks first): two pods in a wave of one.
func TestReconcileWaitsForOwnRequests(t *testing.T) {
	v1 := ver(1)
	data, _ := State{Line: testLine, LKG: lkg(v1)}.Marshal()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: stateNS, Name: testLine.Name(), Labels: map[string]string{LabelState: "true"}}, Data: map[string]string{KeyState: data}}
	web1 := appPod("web-1", v1.Request("models"), liveStatus(v1, t0))
	web1.CreationTimestamp = metav1.NewTime(t0.Add(-30 * time.Minute))
	f := newFixture(t, cm, appPod("web-0", v1.Request("models"), liveStatus(v1, t0)), web1)
	var before corev1.PodList
	if err := f.client.List(t.Context(), &before); err != nil {
		t.Fatal(err)
	}
	f.reconcile(t) // starts v2: its first wave asks web-0, the oldest
	want := map[string]string{"web-0": "v2", "web-1": "v1"}
	if diff := cmp.Diff(want, f.requests(t)); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}

	for i := range before.Items {
		if before.Items[i].Name == "web-0" {
			before.Items[i].Status.Conditions = nil
		}
	}
	real := f.c.client
	f.c.client = stalePods{Client: real, old: &before}
	if res := f.reconcile(t); res.RequeueAfter != staleRetry {
		t.Errorf("requeue after %s, want %s", res.RequeueAfter, staleRetry)
	}
	if diff := cmp.Diff(want, f.requests(t)); diff != "" {
		t.Errorf("decided on a pod cache without its own requests (-want +got):\n%s", diff)
	}

	// Once the cache shows them, decisions go on.
	f.c.client = real
	f.reconcile(t)
	if diff := cmp.Diff(want, f.requests(t)); diff != "" {
		t.Errorf("requests once the cache caught up (-want +got):\n%s", diff)
	}
	// A cache that never catches up (someone else changed the request) is
	// trusted again after staleLimit.
	f.c.markRequest(testLine.Name(), RequestChange{UID: "uid-web-1", Deployment: "models", To: "models/elsewhere/sha256:0"})
	f.clock.Step(staleLimit)
	if res := f.reconcile(t); res.RequeueAfter == staleRetry {
		t.Errorf("still waiting for the pod cache after %s", staleLimit)
	}
}

// TestEventAction: the recorder folds Events with equal actions into one
// series keeping the first note, so Events with different notes must have
// different actions, and equal notes equal ones.
func TestEventAction(t *testing.T) {
	wave1 := "starting wave 1 of 4 (1) of version v2: asking 1 more pods, 1 of 4 pods of ReplicaSet/web on it"
	wave3 := "starting wave 3 of 4 (50%) of version v2: asking 1 more pods, 2 of 4 pods of ReplicaSet/web on it"
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{name: "one note twice", a: wave1, b: wave1, same: true},
		{name: "two waves", a: wave1, b: wave3},
		{name: "two versions", a: "version v1 of source models is the last known good version", b: "version v2 of source models is the last known good version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := eventAction(tc.a), eventAction(tc.b)
			if (a == b) != tc.same {
				t.Errorf("actions %q and %q: equal %v, want %v", a, b, a == b, tc.same)
			}
			if len(a) > 128 || !strings.HasPrefix(a, "DataRollout-") {
				t.Errorf("action %q: want DataRollout-HEX, at most 128 bytes", a)
			}
		})
	}
}
