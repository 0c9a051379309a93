package envtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/test/envtest/framework"
)

// newPodStartsOnLKG scales the Deployment up by one: the mutating webhook
// writes the new pod's request, the last known good version, at admission,
// so the pod holds it from its very first version in the API (the watch's
// ADDED event), before the controller could have written it.
func (w *dataRollout) newPodStartsOnLKG(ctx context.Context, t *testing.T) {
	lkg := w.lkg(ctx, t)
	from := w.kubelet.mark()
	var d appsv1.Deployment
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: "web"}, &d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = ptr.To(*d.Spec.Replicas + 1)
	if err := suite.env.Client.Patch(ctx, &d, patch); err != nil {
		t.Fatalf("scale up: %v", err)
	}
	var first *podChange
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		for _, c := range w.kubelet.history()[from:] {
			if _, known := w.pods[c.pod]; !known && !c.deleted {
				first = &c
				return true, nil
			}
		}
		return false, fmt.Errorf("no new pod yet")
	})
	if !requests(first.request, lkg) {
		t.Errorf("new pod %s was created with request %q, want the last known good version %s", first.pod, first.request, lkg.ID)
	}
}
