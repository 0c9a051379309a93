package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// webMinReady is config/samples' healthz.autocrane.io/min-ready-seconds of
// the web pods.
const webMinReady = 10 * time.Second

// nodeOptions are the choices of a demo on a real cluster.
type nodeOptions struct {
	exitWhenDone bool
	// images: build the images, and load them into a running cluster.
	images     bool
	root       string
	kubectlBin string
}

// runOnNode tells the demo's stories on a real single-node cluster: the
// kubelet runs the injected pods, their sidecars and the data repository.
func runOnNode(ctx context.Context, out io.Writer, o nodeOptions) (err error) {
	step := newStepper(out)
	n, err := startNode(ctx, step, o)
	if n != nil {
		defer func() { err = errors.Join(err, n.stop(step)) }()
	}
	if err != nil {
		return err
	}
	if err := n.install(ctx, step); err != nil {
		return err
	}
	if err := n.clearDemo(ctx, step); err != nil {
		return err
	}
	host := newNodeHost(n.client)
	bridge, err := n.bridgeIP()
	if err != nil {
		return err
	}
	source, err := startHTTPSource(bridge, "v1")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, source.stop()) }()
	step.say("The data source: an http server of the demo's on this host, at its bridge address (the only host address pods reach): "+
		"GET %s = v1", source.url)

	step.say("kubectl apply: config/samples (through %s, the canary tuned for the demo, with a PodDisruptionBudget), "+
		"with the web pods' app serving %s at /files/ and judging each data version with a watchdog, "+
		"and a data repository for the samples' store URL", overlayDir, webDataDir)
	samples, err := renderSamples(ctx, n, o.root, samplePort, editWeb)
	if err != nil {
		return err
	}
	stdout, _, err := n.Kubectl(ctx, strings.NewReader(samples+"---\n"+repositoryManifest(source.url)), "apply", "-f", "-")
	if err != nil {
		return err
	}
	step.output(stdout)

	data := &nodeData{n: n, host: host, source: source}
	data.watch = newNodeDataWatch(data)
	if err := data.startRepository(ctx, step); err != nil {
		return err
	}
	step.say("v1 goes out to the web pods in waves; until a version is live, the injected datadeployer (a native sidecar) " +
		"holds the app back. As it happens, since kubectl apply:")
	if err := data.watch.until(ctx, step, "v1 promoted", data.watch.settled("v1")); err != nil {
		return err
	}
	if err := showWebPod(ctx, step, n, host); err != nil {
		return err
	}
	if err := data.showFiles(ctx, step, "v1"); err != nil {
		return err
	}

	step.say("A mistake is caught at kubectl apply: store.autocrane.io/url: ftp://repo")
	if _, stderr, err := n.Kubectl(ctx, strings.NewReader(badPod), "apply", "-f", "-"); err == nil {
		return errors.New("the invalid pod was accepted")
	} else {
		step.output(stderr)
	}

	if err := showWatchdog(ctx, step, n, host, samplePort); err != nil {
		return err
	}
	if err := data.show(ctx, step); err != nil {
		return err
	}

	if o.exitWhenDone {
		step.say("Done")
		return nil
	}
	step.say("Done. The cluster, AutoCrane, the data repository and the pods keep running so you can look around")
	fmt.Fprintf(out, "    export KUBECONFIG=%s\n", n.kubeconfig)
	fmt.Fprintf(out, "    %s get pods -A -L %s\n", o.kubectlBin, spec.LabelHealth)
	fmt.Fprintf(out, "    curl -X POST http://POD_IP:%d/fail   # a canary pod's app; its IP from kubectl get pods -o wide\n", samplePort)
	fmt.Fprintf(out, "    # publish a new version of the data (the source %s serves this file), and watch it roll out:\n", source.url)
	fmt.Fprintf(out, "    echo v4 > %s\n", source.path())
	fmt.Fprintln(out, "The demo goes on printing what happens to the web pods' data. Press Ctrl-C to stop; the demo then removes what it made.")
	data.follow(ctx, step)
	fmt.Fprintln(out, "\nStopping.")
	return nil
}

// badPod is a pod with a store URL AutoCrane refuses.
const badPod = `apiVersion: v1
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

// clearDemo deletes the demo's namespaces left by an earlier run on a
// cluster that kept running, and waits until they are gone.
func (n *nodeCluster) clearDemo(ctx context.Context, step *stepper) error {
	for _, ns := range []string{demoNamespace, watchdogNamespace} {
		var got corev1.Namespace
		err := n.client.Get(ctx, client.ObjectKey{Name: ns}, &got)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		step.say("Namespace %s is left from an earlier demo: deleting it first", ns)
		if got.DeletionTimestamp == nil {
			if err := n.client.Delete(ctx, &got); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		if err := poll(ctx, 3*time.Minute, func() (bool, error) {
			err := n.client.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			return fmt.Errorf("namespace %s is not gone: %w", ns, err)
		}
	}
	// An earlier run's data state would name versions this run's repository
	// never made.
	return n.deleteLineState(ctx)
}

// deleteLineState deletes the web pods' data line state, if any.
func (n *nodeCluster) deleteLineState(ctx context.Context) error {
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = ownNamespace, webLine().Name()
	if err := n.client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the data state ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}

// showWebPod shows, on one web pod as the kubelet ran it, what the
// injection did: the spec, the start order, the read-only data volume and
// the canary that held the pod unready.
func showWebPod(ctx context.Context, step *stepper, n *nodeCluster, host nodeHost) error {
	pods, err := webPods(ctx, n.client)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return errors.New("no web pods")
	}
	p, err := waitReady(ctx, host, &pods[0])
	if err != nil {
		return err
	}
	step.say("What AutoCrane injected into pod %s, and what the kubelet did with it", p.Name)
	describe(step, p)
	step.done("%s", describeRunning(p))
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, st := range statuses {
		step.done("container %s: %s", st.Name, describeState(st))
	}
	deployer, app := findStatus(statuses, injector.ContainerDataDeployer), findStatus(statuses, "app")
	if deployer == nil || app == nil || deployer.State.Running == nil || app.State.Running == nil {
		return fmt.Errorf("pod %s: the datadeployer and the app are not both running", p.Name)
	}
	if app.State.Running.StartedAt.Before(&deployer.State.Running.StartedAt) {
		return fmt.Errorf("pod %s: the app started before the injected datadeployer", p.Name)
	}
	step.done("the injected datadeployer started first (%s), the app after it (%s)",
		deployer.State.Running.StartedAt.Format(time.TimeOnly), app.State.Running.StartedAt.Format(time.TimeOnly))
	canary := findStatus(statuses, injector.ContainerWatchdogHealthz)
	ready := readyCondition(p)
	if canary == nil || canary.State.Running == nil || ready == nil {
		return fmt.Errorf("pod %s: no running canary or no Ready condition", p.Name)
	}
	held := ready.LastTransitionTime.Sub(canary.State.Running.StartedAt.Time)
	step.done("the canary (%s, healthz.autocrane.io/min-ready-seconds: %d) started %s; the pod turned Ready %s: held unready %s",
		injector.ContainerWatchdogHealthz, int(webMinReady.Seconds()), canary.State.Running.StartedAt.Format(time.TimeOnly),
		ready.LastTransitionTime.Format(time.TimeOnly), held)
	// API times have one-second resolution.
	if held < webMinReady-time.Second {
		return fmt.Errorf("pod %s turned Ready %s after its canary started, before min-ready-seconds", p.Name, held)
	}
	return nil
}

// waitReady waits until the pod is Ready, and returns it.
func waitReady(ctx context.Context, host nodeHost, p *corev1.Pod) (*corev1.Pod, error) {
	var now corev1.Pod
	err := poll(ctx, runningTimeout, func() (bool, error) {
		if err := host.client.Get(ctx, client.ObjectKeyFromObject(p), &now); err != nil {
			return false, err
		}
		return controller.PodReady(&now), stuck(&now)
	})
	if err != nil {
		return nil, fmt.Errorf("wait for pod %s to be Ready: %w", p.Name, err)
	}
	return &now, nil
}

func findStatus(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i]
		}
	}
	return nil
}

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func describeState(st corev1.ContainerStatus) string {
	switch s := st.State; {
	case s.Running != nil:
		return fmt.Sprintf("running since %s, ready %t, %d restarts", s.Running.StartedAt.Format(time.TimeOnly), st.Ready, st.RestartCount)
	case s.Terminated != nil:
		return fmt.Sprintf("terminated (%s, exit %d) at %s", s.Terminated.Reason, s.Terminated.ExitCode, s.Terminated.FinishedAt.Format(time.TimeOnly))
	case s.Waiting != nil:
		return "waiting: " + s.Waiting.Reason
	}
	return "unknown"
}
