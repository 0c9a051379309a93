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
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// fakeKubelet stands in for the kubelet that the demo's control plane lacks:
// it runs a pod's container (cmd/testworkload) as a local process on a
// loopback address of its own (Linux answers on all of 127/8), and reports
// the pod Running and Ready with that address as its IP. For a pod with
// data it also runs the injected datadeployer (cmd/datadeployer) on that
// address, with a data volume and a downward API annotations file of the
// pod's own.
type fakeKubelet struct {
	client client.Client
	dir    string
	http   *http.Client

	mu     sync.Mutex
	nextIP int
	procs  map[string]*container // by pod name
}

// container is what runs for one pod: its app and, for a pod with data,
// its datadeployer.
type container struct {
	app *process
	url string
	ip  string
	// For a pod with data: dir holds its data volume (location) and its
	// downward API files.
	deployer    *process
	deployerURL string
	dir         string
	location    string
	data        *dataSidecar
}

// dataSidecar says how the kubelet runs a pod's datadeployer, as the
// injector configured it: `--mode=sidecar` (the native sidecar's startup
// probe only gates the app, which the demo starts at once).
type dataSidecar struct {
	repositoryURL string
	port          int
	deployments   string
	downward      *downwardAPI
}

// newFakeKubelet builds cmd/testworkload, cmd/datadeployer and
// cmd/datarepository from the repository at root into a temporary
// directory. Call stopAll when done.
func newFakeKubelet(ctx context.Context, c client.Client, root string) (*fakeKubelet, error) {
	dir, err := os.MkdirTemp("", "autocrane-demo-kubelet-")
	if err != nil {
		return nil, fmt.Errorf("create the kubelet's directory: %w", err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator), "./cmd/testworkload", "./cmd/datadeployer", "./cmd/datarepository"}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, errors.Join(fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out), os.RemoveAll(dir))
	}
	return &fakeKubelet{
		client: c,
		dir:    dir,
		http:   &http.Client{Timeout: 2 * time.Second},
		procs:  map[string]*container{},
	}, nil
}

// binary is the path of a program newFakeKubelet built.
func (k *fakeKubelet) binary(name string) string { return filepath.Join(k.dir, name) }

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
	return k.launch(ctx, pod, port, nil)
}

// runData is run for a pod with data: its datadeployer runs too, on the
// pod's IP, following the pod's annotations through data.downward.
func (k *fakeKubelet) runData(ctx context.Context, pod *corev1.Pod, port int, data *dataSidecar) (*container, error) {
	return k.launch(ctx, pod, port, data)
}

func (k *fakeKubelet) launch(ctx context.Context, pod *corev1.Pod, port int, data *dataSidecar) (*container, error) {
	ip := k.newIP()
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	c := &container{url: "http://" + addr, ip: ip, data: data}
	// Registered first: stopAll ends whatever started, on every error.
	k.mu.Lock()
	k.procs[pod.Name] = c
	k.mu.Unlock()
	var err error
	if c.app, err = startProcess("testworkload of pod "+pod.Name, k.binary("testworkload"), "--listen="+addr); err != nil {
		return nil, err
	}
	if data != nil {
		if err := k.startDeployer(c, pod, data); err != nil {
			return nil, err
		}
	}
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		return k.answers(c.app, c.url+"/ping")
	}); err != nil {
		return nil, fmt.Errorf("testworkload for pod %s at %s: %w", pod.Name, addr, err)
	}
	if c.deployer != nil {
		if err := poll(ctx, 30*time.Second, func() (bool, error) {
			return k.answers(c.deployer, c.deployerURL+"/healthz")
		}); err != nil {
			return nil, fmt.Errorf("datadeployer for pod %s at %s: %w", pod.Name, c.deployerURL, err)
		}
	}
	if err := k.reportRunning(ctx, pod, c); err != nil {
		return nil, err
	}
	return c, nil
}

// startDeployer runs pod's datadeployer on its IP, with a data volume and
// an annotations file that data.downward keeps current.
func (k *fakeKubelet) startDeployer(c *container, pod *corev1.Pod, data *dataSidecar) error {
	c.dir = filepath.Join(k.dir, "pods", pod.Name)
	c.location = filepath.Join(c.dir, "data")
	podinfoDir := filepath.Join(c.dir, "podinfo")
	for _, d := range []string{c.location, podinfoDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("pod %s: %w", pod.Name, err)
		}
	}
	if err := data.downward.serve(pod, podinfoDir); err != nil {
		return err
	}
	listen := net.JoinHostPort(c.ip, strconv.Itoa(data.port))
	c.deployerURL = "http://" + listen
	var err error
	c.deployer, err = startProcess("datadeployer of pod "+pod.Name, k.binary("datadeployer"), deployerArgs(data, c.location, podinfoDir, listen)...)
	return err
}

// deployerArgs are the injected datadeployer's arguments, with the demo's
// paths and address.
func deployerArgs(data *dataSidecar, location, podinfoDir, listen string) []string {
	return []string{"--mode=sidecar", "--repository-url=" + data.repositoryURL, "--location=" + location,
		"--deployments=" + data.deployments, "--annotations-file=" + filepath.Join(podinfoDir, "annotations"),
		"--listen=" + listen}
}

// answers reports whether GET url answers 200; an error when p exited.
func (k *fakeKubelet) answers(p *process, url string) (bool, error) {
	if err := p.exited(); err != nil {
		return false, err
	}
	resp, err := k.http.Get(url)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// reportRunning patches pod's status as its kubelet would once its
// containers run.
func (k *fakeKubelet) reportRunning(ctx context.Context, pod *corev1.Pod, c *container) error {
	patch := client.MergeFrom(pod.DeepCopy())
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = c.ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: c.ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	running := func(ctr corev1.Container) corev1.ContainerStatus {
		return corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}
	}
	// Only the app container runs, and the datadeployer for a pod with
	// data (kubectl shows 1/2 READY): the other injected sidecars are not
	// run here.
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{running(appContainer(pod))}
	if c.deployer != nil {
		for _, ic := range pod.Spec.InitContainers {
			if ic.Name == injector.ContainerDataDeployer {
				pod.Status.InitContainerStatuses = []corev1.ContainerStatus{running(ic)}
			}
		}
	}
	if err := k.client.Status().Patch(ctx, pod, patch); err != nil {
		return fmt.Errorf("report pod %s Running: %w", pod.Name, err)
	}
	return nil
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

// stop ends pod's processes, if it runs any: SIGTERM, then SIGKILL after
// stopGrace; and removes its directory.
func (k *fakeKubelet) stop(podName string) error {
	k.mu.Lock()
	c := k.procs[podName]
	delete(k.procs, podName)
	k.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.stop(podName)
}

func (c *container) stop(podName string) error {
	var errs []error
	for _, p := range []*process{c.deployer, c.app} {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	if c.data != nil {
		c.data.downward.forget(podName)
	}
	if c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}

// dataPath is where pod's app finds file of data deployment deployment:
// LOCATION/DEPLOYMENT/FILE; "" for a pod without data.
func (k *fakeKubelet) dataPath(podName, deployment, file string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c := k.procs[podName]; c != nil && c.location != "" {
		return filepath.Join(c.location, deployment, file)
	}
	return ""
}

// dataFile reads file of data deployment deployment as pod's app does,
// trimmed; "" when the pod holds no such file.
func (k *fakeKubelet) dataFile(podName, deployment, file string) string {
	path := k.dataPath(podName, deployment, file)
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// exited says which process the kubelet runs has exited, if any: a
// container of a real pod would have restarted, and the story's waits
// would wait in vain.
func (k *fakeKubelet) exited() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.procs {
		for _, p := range []*process{c.app, c.deployer} {
			if p == nil {
				continue
			}
			if err := p.exited(); err != nil {
				return err
			}
		}
	}
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
