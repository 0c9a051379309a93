//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of what config/ installs.
const (
	managerDeployment   = "autocrane-manager"
	managerSelector     = "app.kubernetes.io/component=manager"
	mutatingConfig      = "autocrane-mutating"
	validatingConfig    = "autocrane-validating"
	leaderElectionLease = "autocrane-manager.autocrane.io"
	managerReplicas     = 2
)

// webhookSpecs is AutoCrane's two webhook configurations' entries as JSON,
// every caBundle emptied: what AutoCrane must never change, whatever
// happens to it (failurePolicy, rules, namespace and object selectors,
// matchConditions, timeouts). Only the caBundle is its to write, and only in
// self-managed mode.
func webhookSpecs(ctx context.Context) (string, error) {
	m, err := env.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mutatingConfig, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	v, err := env.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, validatingConfig, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig.CABundle = nil
	}
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig.CABundle = nil
	}
	b, err := json.MarshalIndent(map[string]any{mutatingConfig: m.Webhooks, validatingConfig: v.Webhooks}, "", "  ")
	return string(b), err
}

// snapshotWebhookSpecs records webhookSpecs now and returns a check that
// fails the test when they differ later.
func snapshotWebhookSpecs(t *testing.T) func() {
	t.Helper()
	before, err := webhookSpecs(t.Context())
	if err != nil {
		t.Fatalf("reading the webhook configurations: %v", err)
	}
	return func() {
		t.Helper()
		after, err := webhookSpecs(t.Context())
		if err != nil {
			t.Fatalf("reading the webhook configurations: %v", err)
		}
		if after != before {
			t.Errorf("the webhook configurations changed (caBundle aside):\nbefore: %s\nafter: %s", before, after)
		}
	}
}

// managerPods lists the manager's pods, terminating ones included.
func managerPods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := env.cs.CoreV1().Pods(autocraneNamespace).List(ctx, metav1.ListOptions{LabelSelector: managerSelector})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// readyManagerPods returns the manager pods that are Ready and not being
// deleted, once there are want of them.
func readyManagerPods(ctx context.Context, want int) ([]corev1.Pod, error) {
	pods, err := managerPods(ctx)
	if err != nil {
		return nil, err
	}
	var ready []corev1.Pod
	var states []string
	for _, p := range pods {
		states = append(states, fmt.Sprintf("%s (%s)", p.Name, describePod(&p)))
		if p.DeletionTimestamp == nil && podReady(&p) {
			ready = append(ready, p)
		}
	}
	if len(ready) != want {
		return nil, fmt.Errorf("%d of %d manager pods ready: %s", len(ready), want, strings.Join(states, ", "))
	}
	return ready, nil
}

// scaleManager sets the manager Deployment's replicas through its scale
// subresource, as `kubectl scale` does.
func scaleManager(ctx context.Context, replicas int32) error {
	_, err := env.cs.AppsV1().Deployments(autocraneNamespace).UpdateScale(ctx, managerDeployment,
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: managerDeployment, Namespace: autocraneNamespace},
			Spec: autoscalingv1.ScaleSpec{Replicas: replicas}}, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("scaling %s to %d: %w", managerDeployment, replicas, err)
	}
	return nil
}

// restoreManager scales the manager back to its installed replicas and
// waits until they are available and the webhook injects again: what
// every test that disturbs the manager leaves behind, failed or not.
func restoreManager(t *testing.T) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if err := scaleManager(ctx, managerReplicas); err != nil {
		t.Error(err)
		return
	}
	if err := poll(ctx, 3*time.Minute, time.Second, env.managerAvailable); err != nil {
		t.Errorf("the manager did not come back: %v", err)
		return
	}
	if err := env.waitForInjection(ctx); err != nil {
		t.Error(err)
	}
}

// leaderPod is the name of the manager pod holding the leader election
// lease (its holder identity is "<pod>_<uuid>"), or "" when none does.
func leaderPod(ctx context.Context) (string, error) {
	lease, err := env.cs.CoordinationV1().Leases(autocraneNamespace).Get(ctx, leaderElectionLease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	name, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
	return name, nil
}
