//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// minReadySeconds is the canary's setting in these tests: long enough to
// see the pod held unready, short enough for a quick suite.
const minReadySeconds = 10

// appDeployment is a plain Deployment of one testworkload pod, with the
// given pod-template annotations (YAML lines, already indented).
func appDeployment(ns, name, annotations string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata:
      labels: {app: %[2]s}
      annotations:
%[3]s
    spec:
      containers:
      - name: app
        image: %[4]s
        imagePullPolicy: Never
        command: [/usr/local/bin/testworkload, --listen=:8080]
        ports: [{containerPort: 8080}]
        %[5]s
`, ns, name, annotations, testImage, restricted)
}

// TestDeploymentGetsDataAndCanary: a plain Deployment in a labelled
// namespace, asking for data deployment x from source src and for the
// canary, runs: the injected datadeployer started before the app, the app
// sees the data read-only, and the canary held the pod unready for
// min-ready-seconds.
func TestDeploymentGetsDataAndCanary(t *testing.T) {
	ns := newNamespace(t, "e2e-data", true)
	url := deployRepository(t, ns)
	apply(t, appDeployment(ns, "web", fmt.Sprintf(`        store.autocrane.io/url: %q
        data.autocrane.io/x: src
        healthz.autocrane.io/min-ready-seconds: "%d"`, url, minReadySeconds)))

	pod := waitPods(t, ns, "app=web", 30*time.Second, "created", func(*corev1.Pod) bool { return true })[0]
	deployer := injectedInit(&pod)
	if deployer == nil {
		t.Fatalf("pod %s has no injected datadeployer init container; init containers %v", pod.Name, initNames(&pod))
	}
	if !hasContainer(pod.Spec.Containers, injector.ContainerWatchdogHealthz) {
		t.Fatalf("pod %s has no %s container", pod.Name, injector.ContainerWatchdogHealthz)
	}
	checkReadOnlyDataMount(t, &pod)

	ready := waitReadyExplainingData(t, ns, "app=web", "x")
	app := containerStatus(ready.Status.ContainerStatuses, "app")
	appStart, ok := startedAt(app)
	if !ok {
		t.Fatalf("app container never started: %s", describePod(ready))
	}

	// The injected init container ran first.
	initStatus := containerStatus(ready.Status.InitContainerStatuses, deployer.Name)
	initStart, ok := startedAt(initStatus)
	if !ok {
		t.Fatalf("init container %s has no start time: %s", deployer.Name, describePod(ready))
	}
	if initStart.After(appStart) {
		t.Errorf("%s started at %s, after the app (%s)", deployer.Name, initStart, appStart)
	}
	if term := initStatus.State.Terminated; term != nil && (term.ExitCode != 0 || term.FinishedAt.After(appStart)) {
		t.Errorf("classic init container %s: exit %d, finished %s, app started %s", deployer.Name, term.ExitCode, term.FinishedAt, appStart)
	}
	// The sidecars run.
	if isNativeSidecar(deployer) && (initStatus.State.Running == nil) {
		t.Errorf("native sidecar %s is not running: %s", deployer.Name, describePod(ready))
	}
	if canary := containerStatus(ready.Status.ContainerStatuses, injector.ContainerWatchdogHealthz); canary == nil || canary.State.Running == nil {
		t.Errorf("%s is not running: %s", injector.ContainerWatchdogHealthz, describePod(ready))
	}

	// The app sees the data, read-only.
	out, err := env.kubectl(t.Context(), "", "exec", "-n", ns, ready.Name, "-c", "app", "--",
		"/usr/local/bin/fsprobe", "check-data", "/data/x")
	if err != nil {
		t.Fatalf("fsprobe in the app container: %v\n%s", err, out)
	}
	var seen struct {
		Files    []string `json:"files"`
		Writable bool     `json:"writable"`
	}
	if err := json.Unmarshal([]byte(out), &seen); err != nil {
		t.Fatalf("fsprobe output %q: %v", out, err)
	}
	if want := []string{"hello.txt", "sub/data.json"}; !slices.Equal(seen.Files, want) || seen.Writable {
		t.Errorf("the app sees /data/x = %q (writable %v), want %q read-only", seen.Files, seen.Writable, want)
	}

	checkCanaryHeld(t, ready)
}

// TestCanaryHoldsPodUnready: with min-ready-seconds alone, the pod gets the
// watchdoghealthz sidecar and no datadeployer, and becomes Ready only after
// the canary has run error-free that long.
func TestCanaryHoldsPodUnready(t *testing.T) {
	ns := newNamespace(t, "e2e-canary", true)
	apply(t, appDeployment(ns, "canary", fmt.Sprintf(`        healthz.autocrane.io/min-ready-seconds: "%d"`, minReadySeconds)))
	pod := waitPods(t, ns, "app=canary", 30*time.Second, "created", func(*corev1.Pod) bool { return true })[0]
	if !hasContainer(pod.Spec.Containers, injector.ContainerWatchdogHealthz) {
		t.Fatalf("pod %s has no %s container: %v", pod.Name, injector.ContainerWatchdogHealthz, containerNames(pod.Spec.Containers))
	}
	if injectedInit(&pod) != nil || hasContainer(pod.Spec.Containers, injector.ContainerDataDeployer) {
		t.Errorf("pod %s got a datadeployer without asking for data", pod.Name)
	}
	// Seen Running but not Ready: the canary holds the pod.
	waitPods(t, ns, "app=canary", 3*time.Minute, "running and held unready", func(p *corev1.Pod) bool {
		app := containerStatus(p.Status.ContainerStatuses, "app")
		return (app != nil && app.State.Running != nil && !podReady(p)) || podReady(p)
	})
	ready := waitPods(t, ns, "app=canary", 3*time.Minute, "Ready", podReady)[0]
	checkCanaryHeld(t, &ready)
}

// TestJobWithNativeSidecarCompletes: a Job whose pod gets the datadeployer
// as a native sidecar completes: the sidecar does not keep the pod alive
// once the job's container exits.
func TestJobWithNativeSidecarCompletes(t *testing.T) {
	ns := newNamespace(t, "e2e-job", true)
	url := deployRepository(t, ns)
	apply(t, fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: reader, namespace: %[1]s}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels: {app: reader}
      annotations:
        store.autocrane.io/url: %[2]q
        data.autocrane.io/x: src
    spec:
      restartPolicy: Never
      containers:
      - name: reader
        image: %[3]s
        imagePullPolicy: Never
        command: [/usr/local/bin/fsprobe, check-data, /data/x]
        %[4]s
`, ns, url, testImage, restricted))
	pod := waitPods(t, ns, "app=reader", 30*time.Second, "created", func(*corev1.Pod) bool { return true })[0]
	deployer := injectedInit(&pod)
	if deployer == nil || !isNativeSidecar(deployer) {
		t.Fatalf("the Job's pod %s has no native datadeployer sidecar; init containers %v", pod.Name, initNames(&pod))
	}
	err := poll(t.Context(), 4*time.Minute, time.Second, func(ctx context.Context) error {
		job, err := env.cs.BatchV1().Jobs(ns).Get(ctx, "reader", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range job.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case "Complete":
				return nil
			case "Failed":
				return fmt.Errorf("%w: job failed: %s", errStop, c.Message)
			}
		}
		return explainDataWait(ctx, ns, "app=reader", "x")
	})
	if err != nil {
		t.Fatalf("Job reader did not complete: %v", err)
	}
}

// TestUnlabelledNamespaceUntouched: a pod without AutoCrane keys in a
// namespace that is not labelled never reaches the webhook and runs as
// written.
func TestUnlabelledNamespaceUntouched(t *testing.T) {
	ns := newNamespace(t, "e2e-plain", false)
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: %[1]s, labels: {app: plain}}
spec:
  containers:
  - name: app
    image: %[2]s
    imagePullPolicy: Never
    command: [/usr/local/bin/testworkload, --listen=:8080]
    %[3]s
`, ns, testImage, restricted))
	pod := waitPods(t, ns, "app=plain", 2*time.Minute, "Running", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning
	})[0]
	if names := containerNames(pod.Spec.Containers); !slices.Equal(names, []string{"app"}) {
		t.Errorf("containers %v, want only app", names)
	}
	if len(pod.Spec.InitContainers) > 0 {
		t.Errorf("init containers %v, want none", initNames(&pod))
	}
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "autocrane-") {
			t.Errorf("volume %s was added", v.Name)
		}
	}
	for k := range pod.Annotations {
		if spec.IsAutoCraneKey(k) || k == spec.AnnotationDefaultContainer {
			t.Errorf("annotation %s was added", k)
		}
	}
}
