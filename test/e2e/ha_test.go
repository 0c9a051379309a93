//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The HA scenario's pace: a pod creation every half second, one manager
// replica killed every 30 seconds, four times (about two minutes of load).
const (
	haCreateInterval = 500 * time.Millisecond
	haKillInterval   = 30 * time.Second
	haKills          = 4
	// haFirstKill and haTail: load before the first kill and after the
	// last, so the failures a kill causes, if any, fall inside the window.
	haFirstKill = 15 * time.Second
	haTail      = 20 * time.Second
)

// TestWebhooksHighlyAvailable: with its two replicas, AutoCrane admits
// every in-scope pod while one replica at a time is killed; with none, the
// in-scope creations fail with the webhook named (failurePolicy: Fail) and
// the rest of the cluster goes on; scaled back, it recovers by itself. It
// never weakens its own webhook configurations on the way.
func TestWebhooksHighlyAvailable(t *testing.T) {
	checkSpecs := snapshotWebhookSpecs(t)
	t.Cleanup(func() { restoreManager(t) })
	inScope := newNamespace(t, "e2e-ha", true)
	outOfScope := newNamespace(t, "e2e-ha-plain", false)
	if _, err := readyManagerPods(t.Context(), managerReplicas); err != nil {
		t.Fatal(err)
	}

	t.Run("one replica killed every 30s", func(t *testing.T) { killReplicasUnderLoad(t, inScope) })
	checkSpecs()
	t.Run("no replica", func(t *testing.T) { noReplica(t, inScope, outOfScope) })
	checkSpecs()
	t.Run("scaled back", func(t *testing.T) { scaledBack(t, inScope) })
	checkSpecs()
}

// killReplicasUnderLoad creates pods steadily while it deletes one manager
// pod with grace period 0 every haKillInterval, the leader and the other
// replica in turn, each time once both replicas are Ready again. Every
// creation must come back injected.
//
// A deletion with grace period 0 removes the pod from the API, and so from
// the webhook Service's endpoints, at once; the kubelet then still gives
// the container a short stop (one second of the preStop sleep, then SIGTERM
// with two seconds: kubelet's minimum), so requests in flight finish and the
// API server's connection is closed cleanly. A SIGKILL of the container (a
// crash) is a different case that no manifest can make lossless: its
// endpoint stays until the kubelet reports the container dead, and the API
// server never retries a webhook call, so the calls sent to it in that
// moment fail (measured on the test cluster: 3 of 419 creations, 4 per
// second, over 4 such kills).
func killReplicasUnderLoad(t *testing.T, ns string) {
	ctx := t.Context()
	load := startSteadyCreates(t, ns, "ha", haCreateInterval)
	start := time.Now()
	for k := range haKills {
		next := start.Add(haFirstKill + time.Duration(k)*haKillInterval)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Until(next)): // the pace of the scenario, not a wait for a condition
		}
		var ready []corev1.Pod
		err := poll(ctx, 2*time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
			var err error
			ready, err = readyManagerPods(ctx, managerReplicas)
			return err
		})
		if err != nil {
			t.Fatalf("kill %d: the manager did not get back to %d ready replicas: %v", k+1, managerReplicas, err)
		}
		leader, err := leaderPod(ctx)
		if err != nil {
			t.Fatal(err)
		}
		victim := ready[0]
		for _, p := range ready {
			if (p.Name == leader) == (k%2 == 0) {
				victim = p
				break
			}
		}
		role := "follower"
		if victim.Name == leader {
			role = "leader"
		}
		zero := int64(0)
		if err := env.cs.CoreV1().Pods(autocraneNamespace).Delete(ctx, victim.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			t.Fatalf("kill %d: deleting %s: %v", k+1, victim.Name, err)
		}
		t.Logf("kill %d at +%s: deleted manager pod %s (%s) with grace period 0",
			k+1, time.Since(start).Round(100*time.Millisecond), victim.Name, role)
	}
	select {
	case <-ctx.Done():
	case <-time.After(haTail):
	}
	results := load.stop()
	requireNoFailedAdmission(t, fmt.Sprintf("%d kills, one every %s", haKills, haKillInterval), results)
}

// noReplica scales the manager to zero and checks what a user sees: every
// in-scope creation fails, naming the webhook it could not call; objects
// out of scope are created as if AutoCrane were not installed.
func noReplica(t *testing.T, inScope, outOfScope string) {
	ctx := t.Context()
	if err := scaleManager(ctx, 0); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	err := poll(ctx, 2*time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		pods, err := managerPods(ctx)
		if err == nil && len(pods) > 0 {
			err = fmt.Errorf("%d manager pods left, first %s", len(pods), pods[0].Name)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the manager pods did not go away: %v", err)
	}
	t.Logf("no manager pod left %s after scaling to 0", time.Since(gone).Round(100*time.Millisecond))

	opted := map[string]string{"healthz.autocrane.io/min-ready-seconds": "1"}
	for _, tc := range []struct {
		name       string
		create     func(context.Context, string) error
		wantFailAt string // the webhook whose call fails; "" means the creation succeeds
	}{
		{"pod in a labelled namespace", func(ctx context.Context, n string) error {
			return createPod(ctx, inScope, n, nil)
		}, "namespace.inject.autocrane.io"},
		{"annotated pod in an unlabelled namespace", func(ctx context.Context, n string) error {
			return createPod(ctx, outOfScope, n, opted)
		}, "annotated.inject.autocrane.io"},
		{"Deployment with AutoCrane keys in an unlabelled namespace", func(ctx context.Context, n string) error {
			return createDeployment(ctx, outOfScope, n, opted)
		}, "workloads.validate.autocrane.io"},
		{"plain pod in an unlabelled namespace", func(ctx context.Context, n string) error {
			return createPod(ctx, outOfScope, n, nil)
		}, ""},
		{"plain Deployment in an unlabelled namespace", func(ctx context.Context, n string) error {
			return createDeployment(ctx, outOfScope, n, nil)
		}, ""},
		{"ConfigMap in a labelled namespace", func(ctx context.Context, n string) error {
			_, err := env.cs.CoreV1().ConfigMaps(inScope).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
			return err
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.create(t.Context(), uniqueName("outage"))
			took := time.Since(start).Round(time.Millisecond)
			switch {
			case tc.wantFailAt == "" && err != nil:
				t.Fatalf("failed with no AutoCrane replica, though out of scope: %v", err)
			case tc.wantFailAt == "":
				t.Logf("created in %s", took)
			case err == nil:
				t.Fatalf("created with no AutoCrane replica; want a failure calling %s", tc.wantFailAt)
			case !strings.Contains(err.Error(), fmt.Sprintf("failed calling webhook %q", tc.wantFailAt)):
				t.Fatalf("the error does not say the call to webhook %s failed: %v", tc.wantFailAt, err)
			default:
				policy, timeout, perr := entryPolicy(t.Context(), tc.wantFailAt)
				if perr != nil {
					t.Fatal(perr)
				}
				if policy != admissionregistrationv1.Fail {
					t.Errorf("webhook %s has failurePolicy %s, want Fail", tc.wantFailAt, policy)
				}
				t.Logf("refused after %s (failurePolicy %s, timeoutSeconds %d): %v", took, policy, timeout, err)
			}
		})
	}
}

// scaledBack scales the manager back to its two replicas, waits for the
// first injected creation, then for both replicas, and checks that a burst
// of creations all succeed.
func scaledBack(t *testing.T, ns string) {
	ctx := t.Context()
	if err := scaleManager(ctx, managerReplicas); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	attempts := 0
	err := poll(ctx, 3*time.Minute, 500*time.Millisecond, func(ctx context.Context) error {
		attempts++
		a := createSteadyPod(ctx, ns, fmt.Sprintf("back-%03d", attempts))
		if a.err != nil {
			return a.err
		}
		if !a.injected {
			return fmt.Errorf("%w: pod %s created without the injection", errStop, a.name)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("in-scope creations did not recover: %v", err)
	}
	t.Logf("first injected creation %s after scaling back (attempt %d)", time.Since(start).Round(100*time.Millisecond), attempts)
	if err := poll(ctx, 3*time.Minute, time.Second, env.managerAvailable); err != nil {
		t.Fatalf("the manager did not get back to %d available replicas: %v", managerReplicas, err)
	}
	load := startSteadyCreates(t, ns, "after", haCreateInterval)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	requireNoFailedAdmission(t, "after recovery", load.stop())
}

// createPod creates a small, never-scheduled pod.
func createPod(ctx context.Context, ns, name string, annotations map[string]string) error {
	_, err := env.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec:       neverScheduledPodSpec(),
	}, metav1.CreateOptions{})
	return err
}

// createDeployment creates a Deployment of zero replicas, with annotations
// on its pod template.
func createDeployment(ctx context.Context, ns, name string, annotations map[string]string) error {
	zero := int32(0)
	labels := map[string]string{"app": name}
	_, err := env.cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec:       neverScheduledPodSpec(),
			},
		},
	}, metav1.CreateOptions{})
	return err
}

func neverScheduledPodSpec() corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: map[string]string{unschedulableKey: "true"},
		Containers: []corev1.Container{{Name: "app", Image: testImage, ImagePullPolicy: corev1.PullNever,
			Command: []string{"/usr/local/bin/testworkload", "--listen=:8080"}}},
	}
}

// entryPolicy returns the failurePolicy and timeoutSeconds of the webhook
// entry named name, in either of AutoCrane's configurations.
func entryPolicy(ctx context.Context, name string) (admissionregistrationv1.FailurePolicyType, int32, error) {
	m, err := env.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mutatingConfig, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	for _, w := range m.Webhooks {
		if w.Name == name {
			return *w.FailurePolicy, *w.TimeoutSeconds, nil
		}
	}
	v, err := env.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, validatingConfig, metav1.GetOptions{})
	if err != nil {
		return "", 0, err
	}
	for _, w := range v.Webhooks {
		if w.Name == name {
			return *w.FailurePolicy, *w.TimeoutSeconds, nil
		}
	}
	return "", 0, fmt.Errorf("no webhook entry %s in %s or %s", name, mutatingConfig, validatingConfig)
}
