package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
)

// probePod asks for the watchdoghealthz canary, the one injection that
// needs no data repository, so a working webhook always changes it. It
// passes the restricted Pod Security Standard, and it is never stored.
func probePod(namespace string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "autocrane-doctor-",
			Namespace:    namespace,
			Annotations:  map[string]string{spec.KeyMinReadySeconds: "30"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.invalid/autocrane-doctor:dry-run",
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
		},
	}
}

// ErrNotInjected is DryRunInjection's error when the pod came back
// without AutoCrane's injection.
var ErrNotInjected = errors.New("the pod came back unchanged: the mutating webhook was not called, or did not inject")

// DryRunInjection creates a probe pod in namespace with dryRun: All, which
// runs every admission webhook and policy but stores nothing, and returns
// it as the API server would have stored it. The error is the API
// server's, or ErrNotInjected. Installers wait on it: a webhook's pods are
// Ready a moment before the API server can reach them through the Service.
func DryRunInjection(ctx context.Context, c client.Writer, namespace string) (*corev1.Pod, error) {
	pod := probePod(namespace)
	if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
		return nil, err
	}
	if pod.Annotations[spec.AnnotationInjected] == "" {
		return pod, ErrNotInjected
	}
	return pod, nil
}

// checkDryRun checks that the probe pod comes back injected, and says
// what a failure likely means.
func (d *doctor) checkDryRun(ctx context.Context) {
	ns := d.opts.ProbeNamespace
	check := "dry-run pod in namespace " + ns
	pod, err := DryRunInjection(ctx, d.client, ns)
	switch {
	case errors.Is(err, ErrNotInjected):
		d.report.fail(check, err.Error(),
			fmt.Sprintf("is namespace %s out of the webhook's scope (kube-system, AutoCrane's own, a namespace labelled %s=%s)? pass --probe-namespace",
				ns, spec.LabelInject, spec.InjectDisabled))
		return
	case err != nil:
		msg := err.Error()
		switch {
		case strings.Contains(msg, "failed calling webhook"):
			d.report.fail(check, "the API server could not call a webhook: "+msg,
				"an x509 error means the caBundle does not match the serving certificate (see the caBundle checks); "+
					"connection refused or no endpoints means no manager pod is ready (kubectl get pods -n "+d.opts.Namespace+")")
		case strings.Contains(msg, "admission webhook") && strings.Contains(msg, "denied the request"):
			d.report.fail(check, "a webhook denied the probe pod: "+msg, "read the message; the probe pod carries only "+spec.KeyMinReadySeconds)
		case apierrors.IsForbidden(err):
			d.report.warn(check, "not allowed to create pods there: "+msg, "run the doctor as a user who may create pods, or pass --probe-namespace")
		default:
			d.report.fail(check, "the dry-run create failed: "+msg, "")
		}
		return
	}
	var names []string
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		names = append(names, c.Name)
	}
	d.report.ok(check, "the API server called the webhooks and the pod came back injected (containers: "+strings.Join(names, ", ")+")")
}
