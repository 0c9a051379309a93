package envtest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

func TestPodInLabelledNamespaceIsInjected(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	pod := appPod("web", dataAnnotations(), nil)
	pod.Namespace = ns
	if err := suite.env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	var got corev1.Pod
	if err := suite.env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	if names := containerNames(got.Spec.InitContainers); !cmp.Equal(names, []string{injector.ContainerDataDeployer}) {
		t.Errorf("init containers: %v", names)
	}
	if got.Spec.InitContainers[0].RestartPolicy == nil || *got.Spec.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("the datadeployer is not a native sidecar on a 1.37 API server")
	}
	if _, ok := got.Annotations[spec.AnnotationInjected]; !ok {
		t.Errorf("no %s annotation", spec.AnnotationInjected)
	}
	if got.Annotations[spec.AnnotationDefaultContainer] != "app" {
		t.Errorf("default container: %q", got.Annotations[spec.AnnotationDefaultContainer])
	}
	mounts := got.Spec.Containers[0].VolumeMounts
	if !slices.ContainsFunc(mounts, func(m corev1.VolumeMount) bool {
		return m.Name == injector.VolumeData && m.MountPath == spec.DefaultLocation && m.ReadOnly
	}) {
		t.Errorf("app container lacks the read-only data mount: %+v", mounts)
	}

	// The stored pod, with every server default applied, re-injects to
	// nothing: what the injector writes is already in its defaulted form.
	var nsObj corev1.Namespace
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	res, err := injector.Mutate(spec.Namespace{Name: ns, Labels: nsObj.Labels, Annotations: nsObj.Annotations}, &got, suite.config)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != injector.Unchanged {
		ops, _ := injector.Patch(&got, res.Pod)
		t.Errorf("re-injecting the stored pod: outcome %s, patch %v", res.Outcome, ops)
	}
}

func TestAnnotatedPodInUnlabelledNamespaceIsInjected(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	pod := appPod("canary", map[string]string{spec.KeyMinReadySeconds: "15"}, nil)
	pod.Namespace = ns
	if err := suite.env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if names := containerNames(pod.Spec.Containers); !cmp.Equal(names, []string{"app", injector.ContainerWatchdogHealthz}) {
		t.Errorf("containers: %v", names)
	}
}

// TestOutOfScopePodsNeverReachTheWebhook counts the webhook's own requests:
// the API server's selectors and matchConditions keep these pods away.
func TestOutOfScopePodsNeverReachTheWebhook(t *testing.T) {
	ctx := t.Context()
	plain := suite.env.CreateNamespace(ctx, t, nil, nil)
	labelled := injectedNamespace(ctx, t)
	disabledNS := suite.env.CreateNamespace(ctx, t, map[string]string{spec.LabelInject: spec.InjectDisabled}, nil)
	own := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace, Labels: map[string]string{spec.LabelInject: spec.InjectEnabled}}}
	if err := suite.env.Client.Create(ctx, own); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cases := map[string]*corev1.Pod{
		"plain pod, unlabelled namespace":           withNamespace(appPod("plain", map[string]string{"example.com/x": "y"}, nil), plain),
		"pod labelled disabled, labelled namespace": withNamespace(appPod("off", dataAnnotations(), map[string]string{spec.LabelInject: spec.InjectDisabled}), labelled),
		"annotated pod, AutoCrane's own namespace":  withNamespace(withGenerateName(appPod("", dataAnnotations(), nil), "own-"), ownNamespace),
		"plain pod, namespace labelled disabled":    withNamespace(appPod("plain", nil, nil), disabledNS),
		"annotated pod labelled disabled elsewhere": withNamespace(appPod("off2", withStore(dataAnnotations()), map[string]string{spec.LabelInject: spec.InjectDisabled}), plain),
	}
	for name, pod := range cases {
		t.Run(name, func(t *testing.T) {
			before := admissions(t, "", "")
			if err := suite.env.Client.Create(ctx, pod); err != nil {
				t.Fatalf("create pod: %v", err)
			}
			if got := admissions(t, "", ""); got != before {
				t.Errorf("webhook was called %v times, want 0", got-before)
			}
			if _, ok := pod.Annotations[spec.AnnotationInjected]; ok {
				t.Errorf("pod was injected")
			}
		})
	}
	// The counter does move for a pod in scope, so the zeros above mean
	// something.
	before := admissions(t, "injected", "injected")
	if err := suite.env.Client.Create(ctx, withNamespace(appPod("in", dataAnnotations(), nil), labelled)); err != nil {
		t.Fatal(err)
	}
	if got := admissions(t, "injected", "injected"); got != before+1 {
		t.Errorf("in-scope pod: webhook count %v, want %v", got, before+1)
	}
}

func TestInvalidAnnotationIsRejectedAtCreate(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	ann := dataAnnotations()
	ann[spec.KeyStoreURL] = "ftp://repo"
	ann[spec.KeyMinReadySeconds] = "soon"
	err := suite.env.Client.Create(ctx, withNamespace(appPod("bad", ann, nil), ns))
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want Invalid, got %v", err)
	}
	want := `admission webhook "namespace.inject.autocrane.io" denied the request: Pod "bad" is invalid: [` +
		`metadata.annotations[healthz.autocrane.io/min-ready-seconds]: Invalid value: "soon": must be whole seconds from 0 to 86400, ` +
		`metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://repo": scheme must be http or https; accepted form: http(s)://host[:port][/path]]`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
}

func TestDeploymentAppliedWithKubectlYieldsInjectedPods(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
        data.autocrane.io/models: models
        healthz.autocrane.io/min-ready-seconds: "10"
    spec:
      containers:
      - name: app
        image: registry.invalid/app:1
`
	if _, stderr, err := suite.env.Kubectl(ctx, strings.NewReader(manifest), "apply", "-n", ns, "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, stderr)
	}
	var pods corev1.PodList
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		if err := suite.env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return len(pods.Items) == 3, nil
	})
	for _, p := range pods.Items {
		if len(p.OwnerReferences) == 0 || p.OwnerReferences[0].Kind != "ReplicaSet" {
			t.Errorf("%s: not owned by a ReplicaSet: %+v", p.Name, p.OwnerReferences)
		}
		if got := containerNames(p.Spec.InitContainers); !cmp.Equal(got, []string{injector.ContainerDataDeployer}) {
			t.Errorf("%s: init containers %v", p.Name, got)
		}
		if got := containerNames(p.Spec.Containers); !cmp.Equal(got, []string{"app", injector.ContainerWatchdogHealthz}) {
			t.Errorf("%s: containers %v", p.Name, got)
		}
	}
}

func TestServerDryRunShowsTheInjection(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	manifest := `apiVersion: v1
kind: Pod
metadata:
  name: preview
  annotations:
    data.autocrane.io/models: models
spec:
  containers:
  - name: app
    image: registry.invalid/app:1
`
	out, stderr, err := suite.env.Kubectl(ctx, strings.NewReader(manifest), "apply", "-n", ns, "--dry-run=server", "-o", "json", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, stderr)
	}
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(out), &pod); err != nil {
		t.Fatalf("decode kubectl output: %v\n%s", err, out)
	}
	if got := containerNames(pod.Spec.InitContainers); !cmp.Equal(got, []string{injector.ContainerDataDeployer}) {
		t.Errorf("dry-run init containers: %v", got)
	}
	var stored corev1.Pod
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "preview"}, &stored); !apierrors.IsNotFound(err) {
		t.Errorf("dry run stored the pod: %v", err)
	}
}

// withStore adds the data repository URL, for namespaces without a default.
func withStore(ann map[string]string) map[string]string {
	ann[spec.KeyStoreURL] = "http://repo.example.invalid:8080"
	return ann
}

func withNamespace(p *corev1.Pod, ns string) *corev1.Pod {
	p.Namespace = ns
	return p
}

// withGenerateName lets the API server pick a unique name, for pods in a
// namespace that outlives the test (AutoCrane's own).
func withGenerateName(p *corev1.Pod, prefix string) *corev1.Pod {
	p.Name, p.GenerateName = "", prefix
	return p
}
