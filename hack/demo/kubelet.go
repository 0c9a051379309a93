package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
)

// stopGrace is how long a stopped container process gets between SIGTERM
// and SIGKILL, like a pod's termination grace period.
const stopGrace = 5 * time.Second

// fakeKubelet stands in for the kubelet that the demo's control plane lacks:
// it runs a pod's container (cmd/testworkload) as a local process on a
// loopback address of its own (Linux answers on all of 127/8), and reports
// the pod Running and Ready with that address as its IP.
type fakeKubelet struct {
	client client.Client
	dir    string
	binary string
	http   *http.Client

	mu     sync.Mutex
	nextIP int
	procs  map[string]*container // by pod name
}

// container is one running process standing in for a pod.
type container struct {
	cmd  *exec.Cmd
	done chan struct{}
	url  string
	ip   string
}

// newFakeKubelet builds cmd/testworkload from the repository at root into a
// temporary directory. Call stopAll when done.
func newFakeKubelet(ctx context.Context, c client.Client, root string) (*fakeKubelet, error) {
	dir, err := os.MkdirTemp("", "autocrane-demo-kubelet-")
	if err != nil {
		return nil, fmt.Errorf("create the kubelet's directory: %w", err)
	}
	binary := filepath.Join(dir, "testworkload")
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/testworkload")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, errors.Join(fmt.Errorf("go build ./cmd/testworkload: %w\n%s", err, out), os.RemoveAll(dir))
	}
	return &fakeKubelet{
		client: c,
		dir:    dir,
		binary: binary,
		http:   &http.Client{Timeout: 2 * time.Second},
		procs:  map[string]*container{},
	}, nil
}

// newIP hands out 127.0.42.1, 127.0.42.2, ...
func (k *fakeKubelet) newIP() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.nextIP
	k.nextIP++
	return fmt.Sprintf("127.0.%d.%d", 42+n/250, 1+n%250)
}

// run starts pod's container listening on a fresh loopback IP and port,
// waits until it answers, and patches the pod's status as a kubelet would.
func (k *fakeKubelet) run(ctx context.Context, pod *corev1.Pod, port int) (*container, error) {
	ip := k.newIP()
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	// Not CommandContext: stop and stopAll end the process, with a grace
	// period, also when ctx is already cancelled (Ctrl-C).
	cmd := exec.Command(k.binary, "--listen="+addr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start testworkload for pod %s: %w", pod.Name, err)
	}
	c := &container{cmd: cmd, done: make(chan struct{}), url: "http://" + addr, ip: ip}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	k.mu.Lock()
	k.procs[pod.Name] = c
	k.mu.Unlock()

	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		select {
		case <-c.done:
			return false, fmt.Errorf("testworkload for pod %s exited: %s", pod.Name, cmd.ProcessState)
		default:
		}
		resp, err := k.http.Get(c.url + "/ping")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return nil, fmt.Errorf("testworkload for pod %s at %s: %w", pod.Name, addr, err)
	}

	patch := client.MergeFrom(pod.DeepCopy())
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	// Only the app container runs (kubectl shows 1/2 READY): the injected
	// sidecars are not run here.
	app := appContainer(pod)
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: app.Name, Image: app.Image, Ready: true, Started: ptr.To(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
	}}
	if err := k.client.Status().Patch(ctx, pod, patch); err != nil {
		return nil, fmt.Errorf("report pod %s Running: %w", pod.Name, err)
	}
	return c, nil
}

// url is where pod's process answers, or "" when it runs none.
func (k *fakeKubelet) url(podName string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c := k.procs[podName]; c != nil {
		return c.url
	}
	return ""
}

// pods names the pods whose processes run, sorted.
func (k *fakeKubelet) pods() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	names := make([]string, 0, len(k.procs))
	for name := range k.procs {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// appContainer is the container kubectl picks by default: the app's.
func appContainer(pod *corev1.Pod) corev1.Container {
	for _, c := range pod.Spec.Containers {
		if c.Name == pod.Annotations[spec.AnnotationDefaultContainer] {
			return c
		}
	}
	return pod.Spec.Containers[0]
}

// post sends POST path to pod's container.
func (k *fakeKubelet) post(ctx context.Context, podName, path string) error {
	k.mu.Lock()
	c := k.procs[podName]
	k.mu.Unlock()
	if c == nil {
		return fmt.Errorf("pod %s runs no process here", podName)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s%s: %w", c.url, path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s%s: %s", c.url, path, resp.Status)
	}
	return nil
}

// stop ends pod's process, if it runs one: SIGTERM, then SIGKILL after
// stopGrace.
func (k *fakeKubelet) stop(podName string) error {
	k.mu.Lock()
	c := k.procs[podName]
	delete(k.procs, podName)
	k.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.stop()
}

func (c *container) stop() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop testworkload at %s: %w", c.url, err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill testworkload at %s: %w", c.url, err)
	}
	<-c.done
	return nil
}

// stopAll ends every process and removes the kubelet's directory.
func (k *fakeKubelet) stopAll() error {
	var errs []error
	for _, name := range k.pods() {
		errs = append(errs, k.stop(name))
	}
	errs = append(errs, os.RemoveAll(k.dir))
	return errors.Join(errs...)
}
