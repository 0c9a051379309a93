package envtest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
)

// validations counts the validating webhook's requests by kind and result.
func validations(t *testing.T, kind, result string) float64 {
	t.Helper()
	families, err := suite.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "autocrane_webhook_validations_total" {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if (l.GetName() == "kind" && kind != "" && l.GetValue() != kind) || (l.GetName() == "result" && result != "" && l.GetValue() != result) {
					continue metrics
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

const deploymentTemplate = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
ANNOTATIONS
    spec:
      containers:
      - name: app
        image: registry.invalid/app:1
`

func deployment(annotations ...string) string {
	var lines []string
	for i := 0; i+1 < len(annotations); i += 2 {
		lines = append(lines, "        "+annotations[i]+": "+annotations[i+1])
	}
	return strings.Replace(deploymentTemplate, "ANNOTATIONS", strings.Join(lines, "\n"), 1)
}

func TestKubectlApplyRejectsABadDeployment(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	manifest := deployment(
		"data.autocrane.io/models", "models",
		"store.autocrane.io/url", "ftp://repo",
		"probe.autocrane.io/web", "10.0.0.1:8080/watchdog",
		"status.autocrane.io/web", "'info/2026-01-01T00:00:00Z/forged'",
	)
	_, stderr, err := suite.env.Kubectl(ctx, strings.NewReader(manifest), "apply", "-n", ns, "-f", "-")
	if err == nil {
		t.Fatal("kubectl apply accepted the Deployment")
	}
	// kubectl lists every error of an Invalid status on its own line.
	want := `The Deployment "web" is invalid: 
* spec.template.metadata.annotations[probe.autocrane.io/web]: Invalid value: "10.0.0.1:8080/watchdog": the host must be the literal POD_IP (the pod's own IP), not "10.0.0.1"; accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH
* spec.template.metadata.annotations[status.autocrane.io/web]: Forbidden: is AutoCrane's state, written on pods by AutoCrane; it cannot be set in a pod template
* spec.template.metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://repo": scheme must be http or https; accepted form: http(s)://host[:port][/path]`
	if got := strings.TrimSpace(stderr); got != want {
		t.Errorf("kubectl said:\n%s\nwant:\n%s", got, want)
	}
}

func TestKubectlApplyWarnsAboutATypo(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	manifest := deployment("data.autocrane.io/models", "models", "store.autocrane.io/locaton", "/models")
	_, stderr, err := suite.env.Kubectl(ctx, strings.NewReader(manifest), "apply", "-n", ns, "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, stderr)
	}
	want := "Warning: annotation store.autocrane.io/locaton is not an AutoCrane key and is ignored; did you mean store.autocrane.io/location?"
	if !strings.Contains(stderr, want) {
		t.Errorf("kubectl stderr lacks the warning:\n%s", stderr)
	}
}

func TestProbesThatLeaveThePodAreRejected(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	const form = "; accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH"
	tests := map[string]struct{ value, want string }{
		"literal IP": {"10.0.0.1:80/w", `the host must be the literal POD_IP (the pod's own IP), not "10.0.0.1"` + form},
		"localhost":  {"localhost:80/w", `the host must be the literal POD_IP (the pod's own IP), not "localhost"` + form},
		"userinfo":   {"POD_IP@evil:80/w", "the host must be POD_IP, without userinfo" + form},
		"other URL":  {"http://x/", "must be POD_IP:PORT followed by a path" + form},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := withNamespace(appPod("probe", map[string]string{spec.PrefixProbe + "web": tc.value}, nil), ns)
			err := suite.env.Client.Create(ctx, pod)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			want := `admission webhook "pods.validate.autocrane.io" denied the request: Pod "probe" is invalid: metadata.annotations[probe.autocrane.io/web]: Invalid value: "` + tc.value + `": ` + tc.want
			if err.Error() != want {
				t.Errorf("got  %s\nwant %s", err, want)
			}
		})
	}
	hostNet := withNamespace(appPod("hostnet", map[string]string{spec.PrefixProbe + "web": "POD_IP:80/w"}, nil), ns)
	hostNet.Spec.HostNetwork = true
	err := suite.env.Client.Create(ctx, hostNet)
	want := `admission webhook "pods.validate.autocrane.io" denied the request: Pod "hostnet" is invalid: metadata.annotations[probe.autocrane.io/web]: Forbidden: watchdog probes are not allowed on hostNetwork pods, whose IP is the node's`
	if err == nil || err.Error() != want {
		t.Errorf("hostNetwork: got %v\nwant %s", err, want)
	}
}

func TestSourcesAreOnlyValidOnTheRepository(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	app := withNamespace(appPod("app", map[string]string{spec.PrefixData + "models": "git:https://example.invalid/m.git"}, nil), ns)
	err := suite.env.Client.Create(ctx, app)
	want := `admission webhook "pods.validate.autocrane.io" denied the request: Pod "app" is invalid: metadata.annotations[data.autocrane.io/models]: Forbidden: a source declaration (KIND:LOCATION) is only valid on the data repository's pods (label autocrane.io/role=datarepository); on an app pod, name a source instead`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	repo := withNamespace(appPod("repo", map[string]string{spec.PrefixData + "models": "git:https://example.invalid/m.git"},
		map[string]string{spec.LabelRole: spec.RoleDataRepository, spec.LabelInject: spec.InjectDisabled}), ns)
	if err := suite.env.Client.Create(ctx, repo); err != nil {
		t.Errorf("repository pod: %v", err)
	}
}

func TestForgedInjectedRecordIsRejected(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, map[string]string{spec.LabelInject: spec.InjectDisabled}, nil)
	pod := withNamespace(appPod("forged", map[string]string{spec.AnnotationInjected: `{"v":1,"hash":"sha256:00"}`}, nil), ns)
	err := suite.env.Client.Create(ctx, pod)
	want := `admission webhook "pods.validate.autocrane.io" denied the request: Pod "forged" is invalid: metadata.annotations[autocrane.io/injected]: Forbidden: is AutoCrane's state, written by its injector; remove it and let the injector write it (this pod is outside the injector's scope or asks for nothing)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestUpdatesWithoutAutoCraneChangesSkipTheWebhook: a metadata update that
// leaves AutoCrane's keys alone never waits on AutoCrane, while one that
// changes a key is validated, and judged only on what it changes.
func TestUpdatesWithoutAutoCraneChangesSkipTheWebhook(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	pod := withNamespace(appPod("web", map[string]string{spec.PrefixProbe + "web": "POD_IP:80/w"}, nil), ns)
	if err := suite.env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// The prober labels the new pod (health unknown: it has no IP yet),
	// which is an AutoCrane change; count only after that write.
	waitHealth(ctx, t, ns, pod.Name, spec.HealthUnknown)
	before := validations(t, "Pod", "")
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"team":"a"},"annotations":{"example.com/x":"y"}}}`))
	if err := suite.env.Client.Patch(ctx, pod, patch); err != nil {
		t.Fatal(err)
	}
	if got := validations(t, "Pod", ""); got != before {
		t.Errorf("the webhook was called %v times for an update without AutoCrane changes", got-before)
	}
	bad := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":{"probe.autocrane.io/web":"localhost:80/w"}}}`))
	err := suite.env.Client.Patch(ctx, pod, bad)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("a bad probe on update: got %v", err)
	}
	if got := validations(t, "Pod", "denied"); got < 1 {
		t.Errorf("denied count %v", got)
	}
	var got corev1.Pod
	if err := suite.env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("POD_IP:80/w", got.Annotations[spec.PrefixProbe+"web"]); diff != "" {
		t.Errorf("probe changed (-want +got):\n%s", diff)
	}
}
