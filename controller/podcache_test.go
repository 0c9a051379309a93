package controller

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// typicalPod is a pod as the API server stores it: an app container, an
// injected sidecar, managed fields, and a few foreign labels and annotations.
func typicalPod(i int) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("web-7d9c5b7f4d-%05d", i), Namespace: "shop", UID: "uid", ResourceVersion: "12345",
			Labels: map[string]string{"app": "web", "pod-template-hash": "7d9c5b7f4d", "status.autocrane.io/health": "info"},
			Annotations: map[string]string{
				"probe.autocrane.io/alive":          "POD_IP:8080/watchdog",
				"status.autocrane.io/alive":         "info/2026-11-21T12:00:00Z/HTTP 200",
				"kubectl.kubernetes.io/restartedAt": "2026-11-20T10:00:00Z",
				"prometheus.io/scrape":              "true",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d9c5b7f4d", UID: "rs", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: "Update", APIVersion: "v1"}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{
				{Name: "app", Image: "registry.example/web:1.2.3", Args: []string{"--port=8080", "--log-level=info"},
					Env:       []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
				{Name: "autocrane-watchdoghealthz", Image: "autocrane:dev", Args: []string{"--annotations-file=/etc/autocrane/podinfo/annotations"}},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}, HostIP: "192.168.0.1",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "registry.example/web:1.2.3"}, {Name: "autocrane-watchdoghealthz", Ready: true}},
		},
	}
}

func TestTrimPodKeepsWhatControllersRead(t *testing.T) {
	got, err := TrimPod(typicalPod(1))
	if err != nil {
		t.Fatal(err)
	}
	pod := got.(*corev1.Pod)
	want := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d9c5b7f4d-00001", Namespace: "shop", UID: "uid", ResourceVersion: "12345",
			Labels: map[string]string{"status.autocrane.io/health": "info"},
			Annotations: map[string]string{
				"probe.autocrane.io/alive":  "POD_IP:8080/watchdog",
				"status.autocrane.io/alive": "info/2026-11-21T12:00:00Z/HTTP 200",
			},
			OwnerReferences: typicalPod(1).OwnerReferences,
		},
		Spec: corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("TrimPod (-want +got):\n%s", diff)
	}
	if !PodReady(pod) {
		t.Errorf("PodReady = false for a Ready pod")
	}
	if got := IndexOwner(pod); len(got) != 1 || got[0] != "rs" {
		t.Errorf("IndexOwner = %v, want [rs]", got)
	}
}

func TestTrimPodPassesOtherObjects(t *testing.T) {
	tomb := cache.DeletedFinalStateUnknown{Key: "shop/web"}
	got, err := TrimPod(tomb)
	if err != nil || got != tomb {
		t.Errorf("TrimPod(tombstone) = %v, %v", got, err)
	}
	bare := typicalPod(1)
	bare.OwnerReferences, bare.Status.Conditions = nil, nil
	if IndexOwner(bare) != nil || PodReady(bare) {
		t.Errorf("a bare, unready pod: owner %v, ready %v", IndexOwner(bare), PodReady(bare))
	}
}

// BenchmarkTrimmedPodCache reports the heap that 10,000 cached pods take,
// trimmed and not (docs/benchmarks.md).
func BenchmarkTrimmedPodCache(b *testing.B) {
	for _, trim := range []bool{false, true} {
		b.Run(fmt.Sprintf("trim=%v", trim), func(b *testing.B) {
			for range b.N {
				before := heap()
				pods := make([]any, 10000)
				for i := range pods {
					var p any = typicalPod(i)
					if trim {
						p, _ = TrimPod(p)
					}
					pods[i] = p
				}
				b.ReportMetric(float64(heap()-before)/(1<<20), "MiB/10k-pods")
				runtime.KeepAlive(pods)
			}
		})
	}
}

func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
