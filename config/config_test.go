// Package config holds AutoCrane's install manifests (kustomize). It has no
// Go code: its tests render every overlay with the kubectl that
// hack/envtest-assets.sh builds and check what an install relies on, so a
// broken patch or a renamed object fails here rather than in a cluster.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// The names the pieces share; each test checks the rendered objects agree.
const (
	namespace      = "autocrane-system"
	deploymentName = "autocrane-manager"
	webhookService = "autocrane-webhook"
	tlsSecret      = "autocrane-webhook-tls"
	servingCert    = "autocrane-webhook"
	injectCAFrom   = "cert-manager.io/inject-ca-from"
)

// certMode is the manager's --cert-mode in an overlay.
type certMode string

const (
	certManager certMode = "cert-manager"
	selfManaged certMode = "self-managed"
)

// kubectlPath is the kubectl in $KUBEBUILDER_ASSETS, or in the directory
// hack/envtest-assets.sh prints (building it on first use).
func kubectlPath(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), filepath.Join("..", "hack", "envtest-assets.sh"))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("hack/envtest-assets.sh: %v\n%s", err, stderr.String())
		}
		dir = strings.TrimSpace(stdout.String())
	}
	path := filepath.Join(dir, "kubectl")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("kubectl from KUBEBUILDER_ASSETS: %v", err)
	}
	return path
}

// manifest is one rendered kustomization.
type manifest struct {
	objs []*unstructured.Unstructured
}

// render runs `kubectl kustomize dir` and decodes every object; objects of
// the built-in kinds are also converted strictly, so a misspelt field fails.
func render(t *testing.T, kubectl, dir string) *manifest {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	m := &manifest{}
	dec := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode %s: %v", dir, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if typed, err := scheme.Scheme.New(u.GroupVersionKind()); err == nil {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, typed, true); err != nil {
				t.Errorf("%s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
		m.objs = append(m.objs, u)
	}
	if len(m.objs) == 0 {
		t.Fatalf("%s rendered no objects", dir)
	}
	return m
}

// find returns the object of kind and name, failing the test without one.
func (m *manifest) find(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range m.objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the rendered objects", kind, name)
	return nil
}

// all returns the objects of kind.
func (m *manifest) all(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range m.objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// decode converts u into out (a typed object or a local struct).
func decode(t *testing.T, u *unstructured.Unstructured, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func (m *manifest) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	decode(t, m.find(t, "Deployment", deploymentName), d)
	return d
}

// managerContainer is the Deployment's container named manager.
func managerContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c
		}
	}
	t.Fatal("the Deployment has no container named manager")
	return corev1.Container{}
}

// flag returns the value of --name=value in args, and whether it is there.
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

// containerPort is the number of the container's port named name.
func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

// overlays are the kustomizations an install applies, and each one's mode.
func overlays() map[string]struct {
	mode certMode
	e2e  bool
} {
	return map[string]struct {
		mode certMode
		e2e  bool
	}{
		"default":         {mode: certManager},
		"selfmanaged":     {mode: selfManaged},
		"e2e":             {mode: certManager, e2e: true},
		"e2e-selfmanaged": {mode: selfManaged, e2e: true},
	}
}

func TestOverlays(t *testing.T) {
	kubectl := kubectlPath(t)
	for name, tc := range overlays() {
		t.Run(name, func(t *testing.T) {
			m := render(t, kubectl, name)
			checkNamespaces(t, m)
			checkManager(t, m)
			checkPodSecurity(t, m)
			checkWebhookService(t, m)
			checkRBACHasNoWildcards(t, m)
			switch tc.mode {
			case certManager:
				checkCertManagerMode(t, m)
			case selfManaged:
				checkSelfManagedMode(t, m)
			}
			for _, o := range m.objs {
				if o.GroupVersionKind().Group == "monitoring.coreos.com" || o.GetKind() == "NetworkPolicy" {
					t.Errorf("%s %s: optional components are off in the shipped overlays", o.GetKind(), o.GetName())
				}
			}
			if tc.e2e {
				checkE2E(t, m)
			}
		})
	}
}

// checkNamespaces: namespaced objects are in autocrane-system (which the
// install creates, restricted), cluster-scoped ones carry no namespace.
func checkNamespaces(t *testing.T, m *manifest) {
	t.Helper()
	ns := &corev1.Namespace{}
	decode(t, m.find(t, "Namespace", namespace), ns)
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces Pod Security %q, want restricted", namespace, got)
	}
	clusterScoped := []string{
		"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
		"ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
	}
	for _, o := range m.objs {
		want := namespace
		if slices.Contains(clusterScoped, o.GetKind()) {
			want = ""
		}
		if o.GetNamespace() != want {
			t.Errorf("%s %s: namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), want)
		}
	}
}

// checkManager: HA, flags, probes and ports agree with each other.
func checkManager(t *testing.T, m *manifest) {
	t.Helper()
	d := m.deployment(t)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", ptrValue(d.Spec.Replicas))
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v, want maxUnavailable 0", ru)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "autocrane-manager" {
		t.Errorf("serviceAccountName %q", pod.ServiceAccountName)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 10 {
		t.Errorf("terminationGracePeriodSeconds %v, want at least 10", pod.TerminationGracePeriodSeconds)
	}
	aff := pod.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("want a preferred pod anti-affinity by hostname, got %+v", aff)
	}

	c := managerContainer(t, d)
	if c.Command[0] != "/usr/local/bin/autocrane" || c.Args[0] != "manager" {
		t.Errorf("command %q args %q, want /usr/local/bin/autocrane manager", c.Command, c.Args)
	}
	if _, ok := flag(c.Args, "leader-elect"); !ok {
		t.Error("no --leader-elect: two replicas would both run the controllers")
	}
	if v, _ := flag(c.Args, "namespace"); v != "$(POD_NAMESPACE)" {
		t.Errorf("--namespace=%q, want $(POD_NAMESPACE)", v)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["POD_NAMESPACE"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE %+v, want the downward API's metadata.namespace", e)
	}
	for _, name := range []string{"AUTOCRANE_DATADEPLOYER_IMAGE", "AUTOCRANE_WATCHDOGHEALTHZ_IMAGE"} {
		if got := env[name].Value; got != c.Image {
			t.Errorf("%s=%q, want the manager's image %q", name, got, c.Image)
		}
	}

	for flagName, port := range map[string]string{"webhook-port": "webhook-server", "metrics-bind-address": "metrics", "health-probe-bind-address": "health"} {
		v, _ := flag(c.Args, flagName)
		want := fmt.Sprint(containerPort(t, c, port))
		if strings.TrimPrefix(v, ":") != want {
			t.Errorf("--%s=%q, but port %s is %s", flagName, v, port, want)
		}
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.ReadinessProbe, "/readyz"}, {c.LivenessProbe, "/healthz"}} {
		probe, path := p.probe, p.path
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != "health" {
			t.Errorf("want a probe GET %s on port health, got %+v", path, probe)
		}
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop sleep: the API server could be sent to a stopped replica")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}

	// The cert dir is a volume mounted where --webhook-cert-dir points.
	dir, _ := flag(c.Args, "webhook-cert-dir")
	if certVolume(t, d) == nil {
		t.Errorf("no volume mounted at --webhook-cert-dir=%s", dir)
	}

	pdb := m.find(t, "PodDisruptionBudget", deploymentName)
	if got, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable"); fmt.Sprint(got) != "1" {
		t.Errorf("PodDisruptionBudget minAvailable %v, want 1", got)
	}
	sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the manager's pods %v", sel, d.Spec.Template.Labels)
	}
}

// certVolume is the volume mounted at --webhook-cert-dir, with its mount.
func certVolume(t *testing.T, d *appsv1.Deployment) *struct {
	corev1.Volume
	Mount corev1.VolumeMount
} {
	t.Helper()
	c := managerContainer(t, d)
	dir, _ := flag(c.Args, "webhook-cert-dir")
	for _, mnt := range c.VolumeMounts {
		if mnt.MountPath != dir {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == mnt.Name {
				return &struct {
					corev1.Volume
					Mount corev1.VolumeMount
				}{v, mnt}
			}
		}
	}
	return nil
}

// checkPodSecurity: every container of every pod template meets the
// restricted Pod Security Standard and keeps its root file system read-only.
func checkPodSecurity(t *testing.T, m *manifest) {
	t.Helper()
	d := m.deployment(t)
	pod := d.Spec.Template.Spec
	podSC := pod.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s has no securityContext", c.Name)
			continue
		}
		nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || sc.RunAsNonRoot == nil && podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = podSC.SeccompProfile
		}
		for what, ok := range map[string]bool{
			"runAsNonRoot":                   nonRoot,
			"allowPrivilegeEscalation=false": sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
			"readOnlyRootFilesystem":         sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem,
			"not privileged":                 sc.Privileged == nil || !*sc.Privileged,
			"capabilities drop ALL":          sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0,
			"seccomp RuntimeDefault":         seccomp != nil && seccomp.Type == corev1.SeccompProfileTypeRuntimeDefault,
		} {
			if !ok {
				t.Errorf("container %s: want %s", c.Name, what)
			}
		}
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("the manager shares a host namespace")
	}
}

// checkWebhookService: the Service both webhook configurations call reaches
// the webhook server's port on the manager's pods.
func checkWebhookService(t *testing.T, m *manifest) {
	t.Helper()
	d := m.deployment(t)
	svc := &corev1.Service{}
	decode(t, m.find(t, "Service", webhookService), svc)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service %s selector %v does not select the manager's pods", webhookService, svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 {
		t.Fatalf("Service %s ports %+v, want one port 443", webhookService, svc.Spec.Ports)
	}
	target := svc.Spec.Ports[0].TargetPort.String()
	if got := containerPort(t, managerContainer(t, d), target); got != 9443 {
		t.Errorf("Service %s targets port %s = %d, want 9443", webhookService, target, got)
	}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		for _, cfg := range m.all(kind) {
			hooks, _, _ := unstructured.NestedSlice(cfg.Object, "webhooks")
			if len(hooks) == 0 {
				t.Errorf("%s %s has no webhooks", kind, cfg.GetName())
			}
			for _, h := range hooks {
				s, _, _ := unstructured.NestedStringMap(h.(map[string]any), "clientConfig", "service")
				if s["name"] != webhookService || s["namespace"] != namespace {
					t.Errorf("%s %s calls service %s/%s, want %s/%s", kind, cfg.GetName(), s["namespace"], s["name"], namespace, webhookService)
				}
				if p, ok := s["port"]; ok && p != "443" {
					t.Errorf("%s %s calls port %s, want 443", kind, cfg.GetName(), p)
				}
			}
		}
	}
}

// ptrValue prints what p points to, or nil.
func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// tempOverlay writes a kustomization into a new temporary directory and
// returns the directory. In the text, %[1]s stands for the path of config/
// relative to that directory: kustomize refuses absolute paths.
func tempOverlay(t *testing.T, format string) string {
	t.Helper()
	dir := t.TempDir()
	configDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, configDir)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(format, filepath.ToSlash(rel))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
