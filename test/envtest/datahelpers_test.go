package envtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/sidecars/datadeployer"
	"github.com/autocrane/autocrane/sidecars/datarepository"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// buildDataPrograms builds cmd/datadeployer and cmd/datarepository into a
// temporary directory of t and returns it.
func buildDataPrograms(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../../cmd/datadeployer", "../../cmd/datarepository").CombinedOutput()
	if err != nil {
		t.Fatalf("build datadeployer and datarepository: %v: %s", err, out)
	}
	return dir
}

// process is a program the test runs in the background (a repository, or a
// pod's datadeployer). The end of its output is kept for the failure log.
type process struct {
	cmd  *exec.Cmd
	out  *framework.TailBuffer
	once sync.Once
}

// startProcess runs binary with args until stop or the end of test life
// (t, or a parent of t whose later steps need the process); when life
// failed, the end of the process's output is logged.
func startProcess(t, life *testing.T, name, binary string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(binary, args...), out: &framework.TailBuffer{}}
	var w io.Writer = p.out
	if os.Getenv("AUTOCRANE_TEST_LOG") == "1" {
		w = io.MultiWriter(p.out, os.Stderr)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	life.Cleanup(func() {
		p.stop()
		if life.Failed() {
			life.Logf("last output of %s:\n%s", name, p.out)
		}
	})
	return p
}

// stop kills the process (SIGKILL: a crash, not a clean stop) and reaps it.
func (p *process) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return satisfied(resp.StatusCode == http.StatusOK, fmt.Errorf("GET %s: %s", url, resp.Status))
	})
}

// gitSource is a git repository in a temporary directory, the origin of a
// data source.
type gitSource struct {
	dir string
}

func newGitSource(t *testing.T) *gitSource {
	t.Helper()
	g := &gitSource{dir: t.TempDir()}
	g.git(t, "init", "-q", "-b", "main")
	return g
}

func (g *gitSource) git(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + g.dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// commit writes files (relative names) and commits them.
func (g *gitSource) commit(t *testing.T, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(g.dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.git(t, "add", "-A")
	g.git(t, "commit", "-q", "-m", "data")
}

// dataRepository is a datarepository process serving one git source,
// restartable on the same root and port.
type dataRepository struct {
	life   *testing.T
	binary string
	args   []string
	url    string
	client *datarepository.Client
	proc   *process
}

func startDataRepository(ctx context.Context, t *testing.T, binary, source string, origin *gitSource) *dataRepository {
	t.Helper()
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	r := &dataRepository{
		life:   t,
		binary: binary,
		args: []string{"--listen=" + listen, "--root=" + t.TempDir(), "--poll-interval=1s",
			"--source=" + source + "=git:file://" + origin.dir + "#main", "--allow-insecure=" + source},
		url: "http://" + listen,
	}
	r.client = &datarepository.Client{BaseURL: r.url, HTTP: &http.Client{Timeout: 10 * time.Second}}
	r.start(ctx, t)
	return r
}

func (r *dataRepository) start(ctx context.Context, t *testing.T) {
	t.Helper()
	r.proc = startProcess(t, r.life, "datarepository", r.binary, r.args...)
	waitHTTP(ctx, t, r.url+"/readyz")
}

// waitVersions asks the repository to check its source now, and waits until
// it lists n versions; it returns the newest.
func (r *dataRepository) waitVersions(ctx context.Context, t *testing.T, source string, n int) datarollout.Version {
	t.Helper()
	var newest datarollout.Version
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		if err := r.client.Sync(ctx, source); err != nil {
			return false, err
		}
		st, err := r.client.Source(ctx, source)
		if err != nil {
			return false, err
		}
		if len(st.Versions) != n {
			return false, fmt.Errorf("%d versions, want %d (last error %q)", len(st.Versions), n, st.LastError)
		}
		v := st.Latest()
		newest = datarollout.Version{ID: v.ID, Digest: v.Digest}
		return true, nil
	})
	return newest
}

// dataPod is a pod played by the test: its app (a testworkload) and its
// datadeployer run as processes on the pod's own loopback IP.
type dataPod struct {
	name     string
	ip       string
	location string
	app      *workload
	deployer *process
	// binary and args start the datadeployer again; its process lives
	// as long as test life.
	binary string
	args   []string
	life   *testing.T
}

// restartDeployer kills the datadeployer (a container crash) and starts it
// again on the same volume and annotations file.
func (p *dataPod) restartDeployer(ctx context.Context, t *testing.T) {
	t.Helper()
	p.deployer.stop()
	p.startDeployer(ctx, t)
}

func (p *dataPod) startDeployer(ctx context.Context, t *testing.T) {
	t.Helper()
	p.deployer = startProcess(t, p.life, "datadeployer of "+p.name, p.binary, p.args...)
	waitHTTP(ctx, t, p.deployerURL()+"/healthz")
}

// deployerStatus is what the datadeployer's GET /status says of models.
func (p *dataPod) deployerStatus() (spec.DataStatus, error) {
	resp, err := http.Get(p.deployerURL() + "/status")
	if err != nil {
		return spec.DataStatus{}, err
	}
	defer resp.Body.Close()
	st, err := datadeployer.DecodeStatus(resp.Body)
	if err != nil {
		return spec.DataStatus{}, err
	}
	ds, ok := st.Deployment("models")
	if !ok {
		return spec.DataStatus{}, fmt.Errorf("no deployment models in %+v", st)
	}
	return ds.DataStatus(), nil
}

// file reads LOCATION/DEPLOYMENT/NAME as the app would.
func (p *dataPod) file(deployment, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(p.location, deployment, name))
	return string(b), err
}

// deployerURL is the datadeployer's HTTP endpoint on the pod's IP.
func (p *dataPod) deployerURL() string {
	return "http://" + net.JoinHostPort(p.ip, strconv.Itoa(int(suite.config.DataDeployerPort)))
}

// runDataPod plays the kubelet for a pod with data: it starts the app
// (testworkload on appPort) and the datadeployer on a fresh loopback IP,
// has kubelet keep the pod's downward API annotations file up to date, and
// reports the pod Running and Ready with that IP.
func runDataPod(ctx context.Context, t *testing.T, kubelet *fakeKubelet, pod *corev1.Pod, appPort int, deployerBinary, repoURL string) *dataPod {
	t.Helper()
	ip := newPodIP()
	p := &dataPod{name: pod.Name, ip: ip, app: startWorkload(ctx, t, ip, appPort), binary: deployerBinary, life: t}
	dir := t.TempDir()
	p.location = filepath.Join(dir, "data")
	podinfoDir := filepath.Join(dir, "podinfo")
	for _, d := range []string{p.location, podinfoDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kubelet.serve(t, pod, podinfoDir)
	p.args = []string{"--mode=sidecar", "--repository-url=" + repoURL, "--location=" + p.location, "--deployments=models",
		"--annotations-file=" + filepath.Join(podinfoDir, "annotations"), "--annotations-poll-interval=1s",
		"--listen=" + net.JoinHostPort(ip, strconv.Itoa(int(suite.config.DataDeployerPort)))}
	p.startDeployer(ctx, t)

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
	return p
}

// lineState reads a line's state ConfigMap from the API server; ok is
// false when there is none yet (or it cannot be read now).
func lineState(ctx context.Context, t *testing.T, line datarollout.Line) (datarollout.State, bool) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Namespace: ownNamespace, Name: line.Name()}, cm); err != nil {
		return datarollout.State{}, false
	}
	st, err := datarollout.ParseState(cm.Data[datarollout.KeyState], line)
	if err != nil {
		t.Fatalf("state ConfigMap %s: %v", cm.Name, err)
	}
	return st, true
}

// metricSum sums the samples of a metric family whose labels include
// every pair of labels, in Prometheus text format fetched from url.
func metricSum(t *testing.T, url, name string, labels map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return sumSamples(string(body), name, labels)
}

// registrySum is metricSum over the shared manager's registry.
func registrySum(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := suite.metrics.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// sumSamples sums, in Prometheus text format, the samples of metric name
// whose labels include every pair of labels.
func sumSamples(text, name string, labels map[string]string) float64 {
	total := 0.0
lines:
	for _, line := range strings.Split(text, "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series, value := line[:i], line[i+1:]
		metric, labelText, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		for k, v := range labels {
			if !strings.Contains(labelText, k+"="+strconv.Quote(v)) {
				continue lines
			}
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			total += f
		}
	}
	return total
}

// deleteState deletes the line's state ConfigMap, which outlives the
// line's pods by design, once the pods are gone: while they exist the
// controller would adopt their version into a new one.
func (w *dataRollout) deleteState(ctx context.Context, t *testing.T) {
	if w.ns == "" {
		return
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pods corev1.PodList
		err := suite.env.Client.List(ctx, &pods, client.InNamespace(w.ns))
		if err == nil && len(pods.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the pods of %s are not gone (%v); deleting the state ConfigMap anyway", w.ns, err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = ownNamespace, w.line.Name()
	if err := suite.env.Client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete the state ConfigMap %s: %v", cm.Name, err)
	}
}

// checkDataInjection checks what the webhook did to the pods of a namespace
// without the inject label: their data annotation opted them in.
func checkDataInjection(t *testing.T, pods []corev1.Pod) {
	t.Helper()
	for _, p := range pods {
		if names := containerNames(p.Spec.InitContainers); !slices.Equal(names, []string{injector.ContainerDataDeployer}) {
			t.Errorf("pod %s: init containers %v, want the datadeployer", p.Name, names)
		}
		want := fmt.Sprintf("%s:%d/watchdog", spec.PodIPPlaceholder, suite.config.DataDeployerPort)
		if got := p.Annotations[injector.DataDeployerWatchdogKey]; got != want {
			t.Errorf("pod %s: %s = %q, want %q", p.Name, injector.DataDeployerWatchdogKey, got, want)
		}
	}
}
