package envtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/test/envtest/framework"
)

// workloads builds cmd/testworkload once and hands out loopback IPs
// (127.0.X.Y, one per pod) for the processes that stand in for pods.
var workloads struct {
	once   sync.Once
	binary string
	err    error
	mu     sync.Mutex
	nextIP int
	ips    map[string]bool
}

func testworkloadBinary(t *testing.T) string {
	t.Helper()
	workloads.once.Do(func() {
		dir, err := os.MkdirTemp("", "autocrane-testworkload-")
		if err != nil {
			workloads.err = err
			return
		}
		workloads.binary = filepath.Join(dir, "testworkload")
		out, err := exec.Command("go", "build", "-o", workloads.binary, "../../cmd/testworkload").CombinedOutput()
		if err != nil {
			workloads.err = fmt.Errorf("build testworkload: %v: %s", err, out)
		}
	})
	if workloads.err != nil {
		t.Fatal(workloads.err)
	}
	return workloads.binary
}

// newPodIP is a fresh loopback address: Linux answers on all of 127/8.
func newPodIP() string {
	workloads.mu.Lock()
	defer workloads.mu.Unlock()
	workloads.nextIP++
	if workloads.ips == nil {
		workloads.ips = map[string]bool{}
	}
	ip := fmt.Sprintf("127.0.%d.%d", 10+workloads.nextIP/250, 1+workloads.nextIP%250)
	workloads.ips[ip] = true
	return ip
}

func wasPodIP(ip string) bool {
	workloads.mu.Lock()
	defer workloads.mu.Unlock()
	return workloads.ips[ip]
}

// freePort is a port free on 127.0.0.1, which the tests then use on other
// loopback addresses too (each pod has its own address, like real pods).
func freePort(t *testing.T) int {
	t.Helper()
	port, err := pickFreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func pickFreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// workload is one testworkload process standing in for a pod's container.
type workload struct {
	url string
}

// startWorkload runs testworkload on ip:port and waits until it answers.
func startWorkload(ctx context.Context, t *testing.T, ip string, port int, args ...string) *workload {
	t.Helper()
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	cmd := exec.Command(testworkloadBinary(t), append([]string{"--listen=" + addr}, args...)...)
	if os.Getenv("AUTOCRANE_TEST_LOG") == "1" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start testworkload: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	w := &workload{url: "http://" + addr}
	framework.Eventually(ctx, t, 30*time.Second, func() (bool, error) {
		resp, err := http.Get(w.url + "/ping")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return w
}

func (w *workload) post(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Post(w.url+path, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// runPod plays the kubelet for pod: it starts a testworkload on a fresh
// loopback IP and then patches the pod's status (IP, phase Running, Ready)
// the way a kubelet would once its containers run. envtest has no kubelet.
func runPod(ctx context.Context, t *testing.T, pod *corev1.Pod, port int, args ...string) *workload {
	t.Helper()
	ip := newPodIP()
	w := startWorkload(ctx, t, ip, port, args...)
	patch := client.MergeFrom(pod.DeepCopy())
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	if err := suite.env.Client.Status().Patch(ctx, pod, patch); err != nil {
		t.Fatalf("patch status of pod %s: %v", pod.Name, err)
	}
	return w
}

// watchedDeployment is a Deployment whose pods declare watchdog "alive" on
// port, with the given extra annotations.
func watchedDeployment(ns, name string, replicas int32, port int, annotations map[string]string) *appsv1.Deployment {
	ann := map[string]string{"probe.autocrane.io/alive": fmt.Sprintf("POD_IP:%d/watchdog", port)}
	for k, v := range annotations {
		ann[k] = v
	}
	labels := map[string]string{"app": name}
	pod := appPod("", ann, labels)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
}

// podsOf lists the live pods with label app=name.
func podsOf(ctx context.Context, t *testing.T, ns, name string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := suite.env.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"app": name}); err != nil {
		t.Fatalf("list pods: %v", err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// waitPods waits until n pods with app=name exist and returns them.
func waitPods(ctx context.Context, t *testing.T, ns, name string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		pods = podsOf(ctx, t, ns, name)
		return satisfied(len(pods) == n, fmt.Errorf("%d pods, want %d", len(pods), n))
	})
	return pods
}

// satisfied adapts a condition for framework.Eventually: true with no
// error, or false with the reason.
func satisfied(ok bool, reason error) (bool, error) {
	if ok {
		return true, nil
	}
	return false, reason
}
