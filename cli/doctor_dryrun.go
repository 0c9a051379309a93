package cli

import (
	"context"
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

// checkDryRun creates the probe pod with dryRun: All, which runs every
// admission webhook and policy but stores nothing, and checks that it came
// back injected.
func (d *doctor) checkDryRun(ctx context.Context) {
	ns := d.opts.ProbeNamespace
	check := "dry-run pod in namespace " + ns
	pod := probePod(ns)
	err := d.client.Create(ctx, pod, client.DryRunAll)
	if err != nil {
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
	if pod.Annotations[spec.AnnotationInjected] == "" {
		d.report.fail(check, "the pod came back unchanged: the mutating webhook was not called, or did not inject",
			fmt.Sprintf("is namespace %s out of the webhook's scope (kube-system, AutoCrane's own, a namespace labelled %s=%s)? pass --probe-namespace",
				ns, spec.LabelInject, spec.InjectDisabled))
		return
	}
	var names []string
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		names = append(names, c.Name)
	}
	d.report.ok(check, "the API server called the webhooks and the pod came back injected (containers: "+strings.Join(names, ", ")+")")
}
