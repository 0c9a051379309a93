package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The budget (per admission, one core) is documented in docs/benchmarks.md;
// these benchmarks measure it and never assert timing.

const (
	// pathologicalEnvVars is the number of env vars of the pathological pod.
	pathologicalEnvVars = 1500
	// pathologicalSize is the target size of its raw object: 1 MiB.
	pathologicalSize = 1 << 20
)

// benchPod is a pod of a Deployment as the API server sends it: defaulted,
// two containers with envCount env vars in total, each value valueLen bytes,
// asking for a data deployment and the canary sidecar.
func benchPod(envCount, valueLen int) *corev1.Pod {
	env := func(from, to int) []corev1.EnvVar {
		var out []corev1.EnvVar
		for i := from; i < to; i++ {
			v := strings.Repeat(fmt.Sprintf("value-%04d;", i), valueLen/11+1)[:valueLen]
			out = append(out, corev1.EnvVar{Name: fmt.Sprintf("APP_SETTING_%04d", i), Value: v})
		}
		return out
	}
	container := func(name string, port int32, e []corev1.EnvVar) corev1.Container {
		return corev1.Container{
			Name:  name,
			Image: "registry.example.com/team/" + name + ":1.2.3",
			Args:  []string{"--config=/etc/" + name + "/config.yaml"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port, Protocol: corev1.ProtocolTCP}},
			Env:   e,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds:   1,
				PeriodSeconds:    10,
				SuccessThreshold: 1,
				FailureThreshold: 3,
			},
			TerminationMessagePath:   corev1.TerminationMessagePathDefault,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}
	}
	half := envCount / 2
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "web-7c9f8d6b5-",
			Namespace:    "apps",
			Labels:       map[string]string{"app": "web", "pod-template-hash": "7c9f8d6b5"},
			Annotations: map[string]string{
				"data.autocrane.io/models":               "models",
				"healthz.autocrane.io/min-ready-seconds": "30",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7c9f8d6b5", UID: "6f1c2a7e-8d1b-4c0a-9e55-1a2b3c4d5e6f"}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{container("web", 8080, env(0, half)), container("worker", 8081, env(half, envCount))},
			Volumes: []corev1.Volume{{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}},
			}}}},
			RestartPolicy:      corev1.RestartPolicyAlways,
			DNSPolicy:          corev1.DNSClusterFirst,
			ServiceAccountName: "default",
			SchedulerName:      corev1.DefaultSchedulerName,
		},
	}
}

func rawPod(tb testing.TB, pod *corev1.Pod) string {
	tb.Helper()
	b, err := json.Marshal(pod)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// typicalRequest: two containers, six env vars.
func typicalRequest(tb testing.TB) admission.Request {
	return podRequest("apps", rawPod(tb, benchPod(6, 24)))
}

// pathologicalRequest: 1,500 env vars, about 1 MiB of raw object.
func pathologicalRequest(tb testing.TB) admission.Request {
	base := len(rawPod(tb, benchPod(pathologicalEnvVars, 0)))
	valueLen := (pathologicalSize - base) / pathologicalEnvVars
	return podRequest("apps", rawPod(tb, benchPod(pathologicalEnvVars, valueLen)))
}

// secondPass is req after its own patch was applied: an injected pod.
func secondPass(tb testing.TB, m *PodMutator, req admission.Request) admission.Request {
	tb.Helper()
	resp := m.Handle(benchContext(tb), req)
	if len(resp.Patches) == 0 {
		tb.Fatalf("first pass did not inject: %+v", resp.Result)
	}
	return podRequest(req.Namespace, string(applyPatch(tb, req, resp)))
}

// benchContext logs as the manager does (JSON), to io.Discard, so the cost
// of the log line is measured too.
func benchContext(tb testing.TB) context.Context {
	return logf.IntoContext(tb.Context(), zap.New(zap.WriteTo(io.Discard)))
}

func benchmarkHandle(b *testing.B, req admission.Request, wantOps bool) {
	m, _ := newTestMutator(b, testNamespaces)
	ctx := benchContext(b)
	resp := m.Handle(ctx, req)
	if !resp.Allowed || (len(resp.Patches) > 0) != wantOps {
		b.Fatalf("allowed %v with %d ops, want allowed with ops: %v (%+v)", resp.Allowed, len(resp.Patches), wantOps, resp.Result)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Handle(ctx, req)
	}
	// After the loop: b.Loop resets the timer and the reported metrics.
	b.ReportMetric(float64(len(req.Object.Raw)), "raw-bytes")
}

func BenchmarkHandleTypicalPod(b *testing.B) {
	benchmarkHandle(b, typicalRequest(b), true)
}

func BenchmarkHandleTypicalPodSecondPass(b *testing.B) {
	m, _ := newTestMutator(b, testNamespaces)
	benchmarkHandle(b, secondPass(b, m, typicalRequest(b)), false)
}

func BenchmarkHandlePathologicalPod(b *testing.B) {
	benchmarkHandle(b, pathologicalRequest(b), true)
}

func BenchmarkHandlePathologicalPodSecondPass(b *testing.B) {
	m, _ := newTestMutator(b, testNamespaces)
	benchmarkHandle(b, secondPass(b, m, pathologicalRequest(b)), false)
}

// The benchmark pods are what docs/benchmarks.md says they are.
func TestBenchmarkPods(t *testing.T) {
	typical := typicalRequest(t)
	pod := decode[corev1.Pod](t, typical.Object.Raw)
	if n := len(pod.Spec.Containers); n != 2 {
		t.Errorf("typical pod has %d containers, want 2", n)
	}
	t.Logf("typical pod: %d bytes", len(typical.Object.Raw))

	patho := pathologicalRequest(t)
	size := len(patho.Object.Raw)
	t.Logf("pathological pod: %d bytes (%.3f MiB)", size, float64(size)/(1<<20))
	if size < pathologicalSize*98/100 || size > pathologicalSize*102/100 {
		t.Errorf("pathological pod is %d bytes, want about %d", size, pathologicalSize)
	}
	pod = decode[corev1.Pod](t, patho.Object.Raw)
	env := 0
	for _, c := range pod.Spec.Containers {
		env += len(c.Env)
	}
	if env != pathologicalEnvVars {
		t.Errorf("pathological pod has %d env vars, want %d", env, pathologicalEnvVars)
	}
}
