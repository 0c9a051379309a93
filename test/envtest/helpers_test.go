package envtest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/autocrane/autocrane/spec"
)

// admissions counts the requests the mutating webhook handled, optionally
// only those with the given result and reason, from its own metric.
func admissions(t *testing.T, result, reason string) float64 {
	t.Helper()
	families, err := suite.metrics.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "autocrane_webhook_admissions_total" {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "result" && result != "" && l.GetValue() != result) ||
					(l.GetName() == "reason" && reason != "" && l.GetValue() != reason) {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// appPod is a minimal, restricted-compliant pod with the given annotations
// and labels.
func appPod(name string, annotations, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.invalid/app:1",
				SecurityContext: &corev1.SecurityContext{
					RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
			}},
		},
	}
}

// dataAnnotations ask for data deployment "models".
func dataAnnotations() map[string]string {
	return map[string]string{spec.PrefixData + "models": "models"}
}

// injectedNamespace creates a namespace labelled for injection, with the
// data repository URL as a namespace default.
func injectedNamespace(ctx context.Context, t *testing.T) string {
	return suite.env.CreateNamespace(ctx, t,
		map[string]string{spec.LabelInject: spec.InjectEnabled},
		map[string]string{spec.KeyStoreURL: "http://repo.example.invalid:8080"})
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

const waitTimeout = 30 * time.Second
