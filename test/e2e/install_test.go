//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/cli"
)

// installAutoCrane installs AutoCrane as a user would, with
// `kubectl apply -k config/e2e` ($E2E_CONFIG), issues its certificates in
// cert-manager's place (when it has any), and waits until the mutating
// webhook injects pods.
func (s *suite) installAutoCrane(ctx context.Context) error {
	s.logf("installing cert-manager's CRDs from %s", certManagerModule)
	if err := s.installCertManagerCRDs(ctx); err != nil {
		return err
	}
	s.logf("kubectl apply -k %s", s.config)
	if out, err := s.kubectl(ctx, "", "apply", "-k", s.config); err != nil {
		return fmt.Errorf("installing AutoCrane: %w\n%s", err, out)
	}
	if err := s.actAsCertManager(ctx, autocraneNamespace); err != nil {
		return err
	}
	if !s.managed {
		// A reused cluster: start pods on the images just loaded and the
		// certificate just issued.
		if _, err := s.kubectl(ctx, "", "rollout", "restart", "deployment/autocrane-manager", "-n", autocraneNamespace); err != nil {
			return err
		}
	}
	s.logf("waiting for the manager's rollout")
	if err := poll(ctx, 5*time.Minute, time.Second, s.managerAvailable); err != nil {
		return fmt.Errorf("the manager did not become available: %w", err)
	}
	return s.waitForInjection(ctx)
}

// managerAvailable checks that every replica of the manager is updated and
// available, and stops the wait at once when a manager container crash-loops,
// quoting its last words.
func (s *suite) managerAvailable(ctx context.Context) error {
	d, err := s.cs.AppsV1().Deployments(autocraneNamespace).Get(ctx, "autocrane-manager", metav1.GetOptions{})
	if err != nil {
		return err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.AvailableReplicas == want && st.Replicas == want {
		return nil
	}
	pods, err := s.cs.CoreV1().Pods(autocraneNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil {
		return err
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount >= 2 && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
				logs, _ := s.kubectl(ctx, "", "logs", "-n", autocraneNamespace, p.Name, "-c", c.Name, "--previous", "--tail=10")
				return fmt.Errorf("%w: manager pod %s crash-loops (%d restarts); its last log lines:\n%s", errStop, p.Name, c.RestartCount, logs)
			}
		}
	}
	return fmt.Errorf("%d of %d replicas updated, %d available", st.UpdatedReplicas, want, st.AvailableReplicas)
}

// waitForInjection creates pods with a server-side dry run, which calls
// the admission webhooks, until one comes back injected: the webhook pods
// are Ready before kube-proxy routes their Service, and the API server
// reaches them only through it.
func (s *suite) waitForInjection(ctx context.Context) error {
	ns := uniqueName("e2e-webhook-check")
	if err := s.createNamespace(ctx, ns, true); err != nil {
		return err
	}
	defer s.cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
	c, err := client.New(s.rest, client.Options{})
	if err != nil {
		return err
	}
	start := time.Now()
	err = poll(ctx, 2*time.Minute, time.Second, func(ctx context.Context) error {
		_, err := cli.DryRunInjection(ctx, c, ns)
		return err
	})
	if err != nil {
		return fmt.Errorf("waiting for the webhook to inject: %w", err)
	}
	s.logf("the mutating webhook injects pods (after %s)", time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (s *suite) createNamespace(ctx context.Context, name string, injected bool) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if injected {
		ns.Labels = map[string]string{"autocrane.io/inject": "enabled"}
	}
	_, err := s.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	// Pods need the namespace's default ServiceAccount, which the
	// controller manager creates a moment later.
	return poll(ctx, time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		_, err := s.cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

func hasContainer(cs []corev1.Container, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}
