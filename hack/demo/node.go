package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/cli"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// The install the demo makes on a real cluster: config/selfmanaged with the
// local-image changes, so that it needs neither cert-manager nor a registry.
const (
	installConfig   = "config/e2e-selfmanaged"
	managerName     = "autocrane-manager"
	managerSelector = "app.kubernetes.io/component=manager"
	// envClusterDir is hack/cluster's work directory variable.
	envClusterDir     = "AUTOCRANE_CLUSTER_DIR"
	defaultClusterDir = "/tmp/autocrane-cluster"
	// journalFile is what hack/cluster records a cluster in.
	journalFile = "cluster.json"
)

// Deadlines on a real node: images are local, but two cores start a
// manager, a repository and six pods.
const (
	installTimeout = 5 * time.Minute
	runningTimeout = 4 * time.Minute
)

// nodeCluster is the real single-node cluster of hack/cluster: one the
// demo started (and stops), or one already running (left running).
type nodeCluster struct {
	root       string
	dir        string
	kubeconfig string
	kubectlBin string
	config     *rest.Config
	client     client.Client
	// started: the demo ran hack/cluster-up, so stop runs cluster-down.
	started bool
	// installed: the demo installed AutoCrane (it was not there).
	installed bool
}

func (n *nodeCluster) apiClient() client.Client { return n.client }

// Kubectl runs kubectl against the cluster.
func (n *nodeCluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, n.kubectlBin, append([]string{"--kubeconfig", n.kubeconfig}, args...)...)
	cmd.Dir = n.root
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), stderr.String(), fmt.Errorf("kubectl %s: %w; stderr: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), stderr.String(), nil
}

func clusterDir() string {
	if d := os.Getenv(envClusterDir); d != "" {
		return d
	}
	return defaultClusterDir
}

// runningCluster reports whether hack/cluster-up's cluster runs in dir:
// its journal and kubeconfig are there and the API server answers.
func runningCluster(ctx context.Context, dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, journalFile)); err != nil {
		return false
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return false
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	return cs.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error() == nil
}

// nodeAllowed says whether this machine can run the demo on a real
// cluster, and if not, why: a cluster already runs, or the machine passes
// hack/cluster's checks (root, its tools, free ranges).
func nodeAllowed(ctx context.Context, root string) (bool, string) {
	if runningCluster(ctx, clusterDir()) {
		return true, ""
	}
	if os.Geteuid() != 0 {
		return false, "not running as root: a real cluster needs root for containerd, the kubelet, a bridge and iptables rules (try: sudo make demo)"
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/cluster", "check")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, "hack/cluster check: " + checkError(string(out), err)
	}
	return true, ""
}

// checkError is the reason in hack/cluster's output: the "error" value of
// its last log line that has one ("go run" adds "exit status 1" after it).
func checkError(out string, err error) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, value, ok := strings.Cut(lines[i], `"error"="`); ok {
			return strings.TrimSuffix(value, `"`)
		}
	}
	return fmt.Sprintf("%v: %s", err, lastLines(out, 3))
}

// startNode builds the images and starts the cluster, or loads the images
// into the one already running.
func startNode(ctx context.Context, step *stepper, o nodeOptions) (*nodeCluster, error) {
	n := &nodeCluster{root: o.root, dir: clusterDir(), kubectlBin: o.kubectlBin}
	n.kubeconfig = filepath.Join(n.dir, "kubeconfig")
	if o.images {
		step.say("Building AutoCrane's image (every program of cmd/, static, user 65532, no shell) and a pause image")
		if err := n.tool(ctx, step, "go", "run", "./hack/imagebuild"); err != nil {
			return nil, err
		}
	}
	if runningCluster(ctx, n.dir) {
		step.say("A cluster started by hack/cluster-up already runs (work dir %s): the demo uses it and leaves it running", n.dir)
		if o.images {
			if err := n.tool(ctx, step, "go", "run", "./hack/cluster", "load"); err != nil {
				return nil, err
			}
		}
	} else {
		step.say("Starting a real single-node cluster with hack/cluster-up (docs/cluster.md): etcd, kube-apiserver, " +
			"kube-controller-manager, kube-scheduler, containerd, the kubelet, kube-proxy and CoreDNS, pods on a bridge that " +
			"forwards nothing off this machine. About a minute once built; the first build takes several more")
		n.started = true
		if err := n.tool(ctx, step, "hack/cluster-up"); err != nil {
			return n, err
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", n.kubeconfig)
	if err != nil {
		return n, fmt.Errorf("read %s: %w", n.kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	n.config = cfg
	if n.client, err = client.New(cfg, client.Options{}); err != nil {
		return n, err
	}
	step.done("API server at %s; export KUBECONFIG=%s", cfg.Host, n.kubeconfig)
	return n, nil
}

// tool runs a repository tool with its output in a log file under
// _output/demo/; on failure it prints the log's last lines.
func (n *nodeCluster) tool(ctx context.Context, step *stepper, name string, args ...string) error {
	logDir := filepath.Join(n.root, "_output", "demo")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(logDir, logName(name, args))
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	rel, _ := filepath.Rel(n.root, logPath)
	step.done("$ %s %s   (output in %s)", name, strings.Join(args, " "), rel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = n.root
	// The tools tear down on SIGINT; give them the time.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 3 * time.Minute
	tail := &framework.TailBuffer{}
	cmd.Stdout = io.MultiWriter(f, tail)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Run(); err != nil {
		step.output(lastLines(tail.String(), 20))
		return fmt.Errorf("%s %s: %w (its output: %s)", name, strings.Join(args, " "), err, rel)
	}
	step.done("done in %s", time.Since(start).Round(time.Second))
	return nil
}

// logName names a tool's log after its last path element and arguments:
// "cluster-up.log", "cluster-load.log", "imagebuild.log".
func logName(name string, args []string) string {
	if name == "go" && len(args) >= 2 && args[0] == "run" {
		name, args = args[1], args[2:]
	}
	return strings.Join(append([]string{filepath.Base(name)}, args...), "-") + ".log"
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// bridgeIP is the host's address on the pod bridge, where the API server
// listens: pods reach the host there, and only there.
func (n *nodeCluster) bridgeIP() (string, error) {
	u, err := url.Parse(n.config.Host)
	if err != nil {
		return "", fmt.Errorf("the API server's address %q: %w", n.config.Host, err)
	}
	host := u.Hostname()
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("the API server's address %q is not an IP on the pod bridge", n.config.Host)
	}
	return host, nil
}

// install installs AutoCrane from config/ as a user would, unless it is
// installed already, and waits until its webhook injects pods.
func (n *nodeCluster) install(ctx context.Context, step *stepper) error {
	var d appsv1.Deployment
	err := n.client.Get(ctx, client.ObjectKey{Namespace: ownNamespace, Name: managerName}, &d)
	switch {
	case err == nil:
		step.say("AutoCrane is installed on this cluster already (deployment %s/%s): the demo uses it as it is", ownNamespace, managerName)
	case apierrors.IsNotFound(err):
		step.say("Installing AutoCrane: kubectl apply -k %s (config/selfmanaged: the manager issues its own webhook certificate; "+
			"image autocrane:dev, loaded into the node, never pulled)", installConfig)
		stdout, _, err := n.Kubectl(ctx, nil, "apply", "-k", installConfig)
		if err != nil {
			return err
		}
		step.output(stdout)
		n.installed = true
	default:
		return fmt.Errorf("look for AutoCrane's manager: %w", err)
	}
	step.done("waiting for the manager's 2 replicas to be available, and for its webhook to inject a server-side dry run")
	if err := poll(ctx, installTimeout, func() (bool, error) { return n.managerAvailable(ctx) }); err != nil {
		return fmt.Errorf("the manager did not become available: %w", err)
	}
	if err := poll(ctx, 2*time.Minute, func() (bool, error) { return n.injects(ctx) }); err != nil {
		return fmt.Errorf("the webhook does not inject pods: %w", err)
	}
	stdout, _, err := n.Kubectl(ctx, nil, "get", "pods", "-n", ownNamespace, "-l", managerSelector, "-o", "wide")
	if err != nil {
		return err
	}
	step.output(stdout)
	return nil
}

// managerAvailable reports whether every replica of the manager is updated
// and available.
func (n *nodeCluster) managerAvailable(ctx context.Context) (bool, error) {
	var d appsv1.Deployment
	if err := n.client.Get(ctx, client.ObjectKey{Namespace: ownNamespace, Name: managerName}, &d); err != nil {
		return false, err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want && st.AvailableReplicas == want && st.Replicas == want {
		return true, nil
	}
	return false, fmt.Errorf("%d of %d replicas updated, %d available", st.UpdatedReplicas, want, st.AvailableReplicas)
}

// injects reports whether the webhook injects a server-side dry-run pod
// (autocrane doctor's probe): the API server reaches the webhook through
// its Service, which kube-proxy routes a moment after the pods are Ready.
func (n *nodeCluster) injects(ctx context.Context) (bool, error) {
	_, err := cli.DryRunInjection(ctx, n.client, "default")
	return err == nil, err
}

// stop removes what the demo made: the whole cluster when it started it,
// else its namespaces (AutoCrane stays installed).
func (n *nodeCluster) stop(step *stepper) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if n.started {
		step.say("Stopping the cluster the demo started: hack/cluster-down removes every process, mount, bridge, route and rule it made")
		return n.tool(ctx, step, "hack/cluster-down")
	}
	if n.client == nil {
		return nil
	}
	step.say("Removing the demo's namespaces and its data line's state; the cluster keeps running (hack/cluster-down stops it)")
	var errs []error
	for _, ns := range []string{demoNamespace, watchdogNamespace} {
		err := n.client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, n.deleteLineState(ctx))
	if n.installed {
		step.done("AutoCrane stays installed; kubectl delete -k %s removes it", installConfig)
	}
	return errors.Join(errs...)
}
