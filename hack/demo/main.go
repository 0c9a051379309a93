// Command demo shows AutoCrane injecting pods through a real kube-apiserver,
// on a fresh machine, with no cluster: it starts etcd, kube-apiserver and
// kube-controller-manager from the binaries hack/envtest-assets.sh built,
// runs AutoCrane's manager with its webhook registered, applies
// config/samples/ and prints what happened, step by step.
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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/manager"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

const demoNamespace = "autocrane-demo"

func main() {
	exit := flag.Bool("exit", false, "stop as soon as the demo has run, instead of waiting for Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *exit); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		stop()
		os.Exit(1)
	}
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

	step.say("Starting AutoCrane's manager; config/webhook/manifests.yaml routes opted-in pods to its webhook")
	wio := env.Environment.WebhookInstallOptions
	mgr, err := manager.New(ctx, env.Config, manager.Options{
		WebhookHost:            wio.LocalServingHost,
		WebhookPort:            wio.LocalServingPort,
		CertDir:                wio.LocalServingCertDir,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		Injector:               injector.DefaultConfig(),
		MetricsRegistry:        prometheus.NewRegistry(),
		Logger:                 logr.Discard(),
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

	step.say("kubectl apply -k config/samples (a namespace labelled autocrane.io/inject=enabled, and a plain Deployment)")
	stdout, stderr, err := env.Kubectl(ctx, nil, "apply", "-k", filepath.Join(root, "config", "samples"))
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
	bad := `apiVersion: v1
kind: Pod
metadata:
  name: bad
  namespace: ` + demoNamespace + `
  annotations:
    data.autocrane.io/models: models
    store.autocrane.io/url: ftp://repo
spec:
  containers:
  - {name: app, image: autocrane:dev}
`
	if _, stderr, err := env.Kubectl(ctx, strings.NewReader(bad), "apply", "-f", "-"); err == nil {
		return errors.New("the invalid pod was accepted")
	} else {
		step.output(stderr)
	}

	if exitWhenDone {
		step.say("Done; stopping everything started here")
		return nil
	}
	step.say("Done. The control plane keeps running so you can look around")
	fmt.Fprintf(out, "    export KUBECONFIG=%s\n", env.KubeconfigPath)
	fmt.Fprintf(out, "    %s get pods -n %s -o yaml\n", filepath.Join(env.AssetsDir, "kubectl"), demoNamespace)
	fmt.Fprintln(out, "Press Ctrl-C to stop; everything started here is stopped and removed.")
	<-ctx.Done()
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
