package framework

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// pollInterval is how often Eventually evaluates its condition.
	pollInterval = 50 * time.Millisecond
	// cleanupTimeout bounds the API calls made from t.Cleanup.
	cleanupTimeout = 30 * time.Second
)

// CreateNamespace creates a namespace with a unique generated name ("t-" and
// a random suffix), so tests sharing one Env do not collide, and deletes it
// when t finishes. It fails t if the namespace cannot be created.
//
// Without a controller manager (Options.ControllerManager) a deleted
// namespace stays Terminating forever, since the namespace controller
// empties and removes it; its objects stay visible.
func (e *Env) CreateNamespace(ctx context.Context, t testing.TB, labels, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "t-",
		Labels:       labels,
		Annotations:  annotations,
	}}
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := e.Client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// Eventually calls cond every 50ms until it returns true with a nil error,
// and fails t (t.Fatalf, so call it from the test's goroutine) if that does
// not happen within timeout or before ctx ends. An error from cond does not
// stop the polling: it is remembered and quoted in the failure message, so
// cond can return the reason it is not satisfied yet.
func Eventually(ctx context.Context, t testing.TB, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr == nil {
				t.Fatalf("condition not met within %s (%v); it never returned an error", timeout, context.Cause(ctx))
			}
			t.Fatalf("condition not met within %s (%v); last error: %v", timeout, context.Cause(ctx), lastErr)
		case <-ticker.C:
		}
	}
}
