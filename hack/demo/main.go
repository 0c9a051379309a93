// Command demo shows AutoCrane injecting pods through a real kube-apiserver,
// on a fresh machine, with no cluster: it starts etcd, kube-apiserver and
// kube-controller-manager from the binaries hack/envtest-assets.sh built,
// runs AutoCrane's manager with its webhook and controllers, applies
// config/samples/ and prints what happened, step by step: the injection,
// a rejected pod, the watchdog story (a canary pod fails, AutoCrane
// records the error, evicts the pod, and its replacement turns healthy),
// and the data story (a git source; a commit that rolls out in waves; a bad
// commit that is rolled back). It plays the kubelet: the pods' containers,
// and the datadeployers of the pods with data, run as local processes.
//
// That is the control-plane-only demo. When the machine allows a real
// cluster (root, and hack/cluster check passes, or a hack/cluster-up
// cluster already runs), the demo runs on a real single-node cluster
// instead (onnode.go): it builds the image, starts the cluster, installs
// AutoCrane from config/, and the kubelet runs every pod, the injected
// sidecars and the data repository. --cluster=yes|no forces the choice.
//
// Run it with `make demo`. It stops cleanly on Ctrl-C; --exit stops it as
// soon as the demo has run (CI uses that).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/manager"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

const demoNamespace = "autocrane-demo"

func main() {
	exit := flag.Bool("exit", false, "stop as soon as the demo has run, instead of waiting for Ctrl-C")
	where := flag.String("cluster", "auto", "where the demo runs: auto (a real single-node cluster when this machine allows it: "+
		"root, and hack/cluster check passes or a cluster already runs; else a bare control plane), "+
		"yes (a real cluster, or fail), no (a bare control plane)")
	images := flag.Bool("images", true, "on a real cluster: build the images first (go run ./hack/imagebuild) and load them "+
		"into a cluster that already runs; false uses the images the cluster has")
	flag.Parse()
	// The demo prints its own story; without this, controller-runtime
	// prints a stack trace 30s in, as nobody set its global logger.
	ctrllog.SetLogger(logr.Discard())
	// SIGHUP too: closing the terminal must stop the control plane, whose
	// processes run in process groups of their own.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := choose(ctx, os.Stdout, *exit, *where, *images); err != nil {
		if ctx.Err() != nil {
			// Ctrl-C before the end: everything was stopped on the way out.
			fmt.Fprintf(os.Stderr, "demo: interrupted; everything started here was stopped (%v)\n", err)
			stop()
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// choose runs the demo on a real cluster or on a bare control plane, as
// where and the machine allow, and says which and why.
func choose(ctx context.Context, out io.Writer, exitWhenDone bool, where string, images bool) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	switch where {
	case "auto", "yes":
		fmt.Fprintln(out, "demo: can this machine run a real single-node cluster? (a running hack/cluster-up cluster, or root and hack/cluster check)")
		ok, why := nodeAllowed(ctx, root)
		if ok {
			assets := os.Getenv("KUBEBUILDER_ASSETS")
			if assets == "" {
				return errors.New("$KUBEBUILDER_ASSETS is not set: run the demo with make demo, which builds kubectl")
			}
			return runOnNode(ctx, out, nodeOptions{exitWhenDone: exitWhenDone, images: images, root: root,
				kubectlBin: filepath.Join(assets, "kubectl")})
		}
		if where == "yes" {
			return fmt.Errorf("--cluster=yes, but this machine cannot start a cluster: %s", why)
		}
		fmt.Fprintf(out, "demo: no real cluster: %s.\n", why)
	case "no":
		fmt.Fprintln(out, "demo: --cluster=no.")
	default:
		return fmt.Errorf("--cluster=%q: want auto, yes or no", where)
	}
	fmt.Fprintln(out, "demo: running the control-plane-only demo instead: etcd, kube-apiserver and kube-controller-manager, "+
		"with the demo itself playing the kubelet (its pods run as local processes).")
	return run(ctx, out, exitWhenDone)
}

func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the repository")
	}
	return filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
}

func run(ctx context.Context, out io.Writer, exitWhenDone bool) (err error) {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	step := newStepper(out)

	step.say("Starting a control plane: etcd, kube-apiserver and kube-controller-manager (binaries in $KUBEBUILDER_ASSETS)")
	env, err := framework.Start(ctx, framework.Options{
		WebhookManifests:  []string{filepath.Join(root, "config", "webhook", "manifests.yaml"), filepath.Join(root, "config", "webhook", "validating.yaml")},
		ControllerManager: true,
	})
	if err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	defer func() { err = errors.Join(err, env.Stop()) }()
	step.done("API server at %s", env.Config.Host)
	if _, stderr, err := env.Kubectl(ctx, nil, "apply", "-k", filepath.Join(root, "config", "policy")); err != nil {
		return fmt.Errorf("kubectl apply -k config/policy: %w\n%s", err, stderr)
	}
	step.done("config/policy installed: only AutoCrane may write its state keys (status.autocrane.io/...)")

	// The data rollouts keep their state in AutoCrane's own namespace.
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace}}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ownNamespace, err)
	}
	deployerPort, err := freePort()
	if err != nil {
		return err
	}
	injectorConfig := injector.DefaultConfig()
	injectorConfig.DataDeployerPort = int32(deployerPort)

	step.say("Starting AutoCrane's manager (webhooks, watchdog prober, eviction, data rollouts with their state in namespace %s); "+
		"config/webhook/manifests.yaml routes opted-in pods to its webhook", ownNamespace)
	wio := env.Environment.WebhookInstallOptions
	mgr, err := manager.New(ctx, env.Config, manager.Options{
		WebhookHost:            wio.LocalServingHost,
		WebhookPort:            wio.LocalServingPort,
		CertDir:                wio.LocalServingCertDir,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		Namespace:              ownNamespace,
		Injector:               injectorConfig,
		MetricsRegistry:        prometheus.NewRegistry(),
		Logger:                 logr.Discard(),
		Controllers: manager.ControllerOptions{
			// The demo's test runs it more than once in one process.
			SkipNameValidation: true,
			// Look for new data versions every second (default 30s).
			DataPollInterval: time.Second,
		},
	})
	if err != nil {
		return err
	}
	mctx, cancelManager := context.WithCancel(ctx)
	managerDone := make(chan error, 1)
	go func() { managerDone <- mgr.Start(mctx) }()
	defer func() {
		cancelManager()
		err = errors.Join(err, <-managerDone)
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("manager cache did not sync")
	}
	step.done("webhook serving at https://%s:%d/mutate-v1-pod", wio.LocalServingHost, wio.LocalServingPort)
	step.done("the datadeployer's port, %d by default, is %d here: a port free on this machine", injector.DefaultDataDeployerPort, deployerPort)

	port, err := freePort()
	if err != nil {
		return err
	}
	step.say("kubectl apply -k %s: config/samples as shipped (a namespace labelled autocrane.io/inject=enabled, a plain Deployment, "+
		"and the watchdog canary), with the canary tuned for the demo and a PodDisruptionBudget", overlayDir)
	step.done("between kubectl kustomize and kubectl apply -f -, the canary's port %d becomes %d, free on this machine", samplePort, port)
	samples, err := renderSamples(ctx, controlPlane{env}, root, port, nil)
	if err != nil {
		return err
	}
	stdout, stderr, err := env.Kubectl(ctx, strings.NewReader(samples), "apply", "-f", "-")
	if err != nil {
		return fmt.Errorf("kubectl apply: %w\n%s", err, stderr)
	}
	step.output(stdout)

	step.say("Waiting for kube-controller-manager to create the Deployment's pods (each goes through the webhook)")
	var pods corev1.PodList
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		if err := env.Client.List(ctx, &pods, client.InNamespace(demoNamespace)); err != nil {
			return false, err
		}
		return len(pods.Items) >= 2, nil
	}); err != nil {
		return fmt.Errorf("wait for pods: %w", err)
	}
	for _, p := range pods.Items {
		step.done("pod %s created by ReplicaSet %s", p.Name, ownerName(p))
	}

	pod := pods.Items[0]
	step.say("What AutoCrane injected into pod %s", pod.Name)
	describe(step, &pod)

	step.say("A mistake is caught at kubectl apply: store.autocrane.io/url: ftp://repo")
	if _, stderr, err := env.Kubectl(ctx, strings.NewReader(badPod), "apply", "-f", "-"); err == nil {
		return errors.New("the invalid pod was accepted")
	} else {
		step.output(stderr)
	}

	step.say("Building cmd/testworkload (the apps' container), cmd/datadeployer and cmd/datarepository, to run the pods and the data repository here")
	kubelet, err := newFakeKubelet(ctx, env.Client, root)
	if err != nil {
		return err
	}
	// Runs before the manager and the control plane stop (defers run last
	// first), on every return, Ctrl-C included.
	defer func() { err = errors.Join(err, kubelet.stopAll()) }()
	step.done("built")
	if err := showWatchdog(ctx, step, controlPlane{env}, fakeHost{kubelet}, port); err != nil {
		return err
	}
	data := &dataWorld{deployerPort: deployerPort, appPort: port}
	// Before the kubelet's pods stop, after the story: the repository and
	// the pod watch serve the pods until the demo ends.
	defer func() { err = errors.Join(err, data.stop()) }()
	if err := data.show(ctx, step, env, kubelet); err != nil {
		return err
	}

	if exitWhenDone {
		step.say("Done; stopping everything started here")
		return nil
	}
	kubectl := filepath.Join(env.AssetsDir, "kubectl")
	step.say("Done. The control plane, AutoCrane, the data repository and the pods keep running so you can look around")
	fmt.Fprintf(out, "    export KUBECONFIG=%s\n", env.KubeconfigPath)
	fmt.Fprintf(out, "    %s get pods -n %s -o yaml\n", kubectl, demoNamespace)
	fmt.Fprintf(out, "    %s get pods -n %s -L %s -w\n", kubectl, watchdogNamespace, spec.LabelHealth)
	for _, name := range kubelet.pods() {
		fmt.Fprintf(out, "    curl -X POST %s/fail   # pod %s\n", kubelet.url(name), name)
	}
	fmt.Fprintf(out, "    # publish a new version of the data and watch it roll out in waves:\n")
	fmt.Fprintf(out, "    echo v4 > %s && git -C %s commit -qam 'models v4'\n", filepath.Join(data.origin.dir, versionFile), data.origin.dir)
	fmt.Fprintf(out, "    %s get pods -n %s -w -o custom-columns='%s'\n", kubectl, dataNamespace, dataColumns)
	fmt.Fprintln(out, "The demo goes on playing the kubelet for the canary's new pods, and keeps the reader pods' annotation files current.")
	fmt.Fprintln(out, "Press Ctrl-C to stop; everything started here is stopped and removed.")
	kubelet.follow(ctx, step, port, func() { data.follow(ctx, step) })
	fmt.Fprintln(out, "\nStopping.")
	return nil
}

func describe(step *stepper, pod *corev1.Pod) {
	for _, c := range pod.Spec.InitContainers {
		kind := "init container"
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			kind = "native sidecar (initContainers, restartPolicy: Always, startup probe " + c.StartupProbe.HTTPGet.Path + ")"
		}
		step.done("%s: %s, args %s", kind, c.Name, strings.Join(c.Args, " "))
	}
	for _, c := range pod.Spec.Containers {
		var mounts []string
		for _, m := range c.VolumeMounts {
			ro := "rw"
			if m.ReadOnly {
				ro = "ro"
			}
			mounts = append(mounts, fmt.Sprintf("%s at %s (%s)", m.Name, m.MountPath, ro))
		}
		extra := ""
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil {
			extra = ", readiness probe " + c.ReadinessProbe.HTTPGet.Path
		}
		step.done("container: %s%s; mounts: %s", c.Name, extra, strings.Join(mounts, ", "))
	}
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "autocrane-") {
			step.done("volume: %s", v.Name)
		}
	}
	step.done("%s: %s", spec.AnnotationDefaultContainer, pod.Annotations[spec.AnnotationDefaultContainer])
	step.done("%s: %s", spec.AnnotationInjected, pod.Annotations[spec.AnnotationInjected])
}

func ownerName(p corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		return o.Name
	}
	return "(none)"
}

func poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stepper prints numbered steps.
type stepper struct {
	out io.Writer
	n   int
}

func newStepper(out io.Writer) *stepper { return &stepper{out: out} }

func (s *stepper) say(format string, args ...any) {
	s.n++
	fmt.Fprintf(s.out, "\n%d. %s\n", s.n, fmt.Sprintf(format, args...))
}

func (s *stepper) done(format string, args ...any) {
	fmt.Fprintf(s.out, "   - %s\n", fmt.Sprintf(format, args...))
}

func (s *stepper) output(text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(s.out, "   | %s\n", line)
	}
}
