package injector

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// golden compares got with testdata/NAME.yaml; UPDATE_GOLDEN=1 rewrites it.
func golden(t *testing.T, name string, got *corev1.Pod) {
	t.Helper()
	b, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join("testdata", name+".yaml")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(b)); diff != "" {
		t.Errorf("%s differs (-want +got; UPDATE_GOLDEN=1 to accept):\n%s", file, diff)
	}
}

func mustInject(t *testing.T, pod *corev1.Pod, cfg Config) *corev1.Pod {
	t.Helper()
	out, err := Inject(pod, parse(pod), cfg)
	if err != nil {
		t.Fatalf("Inject: %v", err)
	}
	return out
}

func classic() Config {
	c := DefaultConfig()
	c.SidecarMode = spec.SidecarClassic
	return c
}

func TestInjectGolden(t *testing.T) {
	tests := map[string]struct {
		pod *corev1.Pod
		cfg Config
	}{
		"native-data":    {pod: makePod("web").withData().obj(), cfg: DefaultConfig()},
		"classic-data":   {pod: makePod("web").withData().obj(), cfg: classic()},
		"healthz-only":   {pod: makePod("web").annotate(spec.KeyMinReadySeconds, "30", spec.KeyAlwaysHealthyAfterSeconds, "600").obj(), cfg: DefaultConfig()},
		"native-healthz": {pod: makePod("web").withData().annotate(spec.KeyMinReadySeconds, "10", spec.KeyStoreLocation, "/srv/models").obj(), cfg: DefaultConfig()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			golden(t, name, mustInject(t, tc.pod, tc.cfg))
		})
	}
}

func TestInjectIsIdempotent(t *testing.T) {
	pods := map[string]*corev1.Pod{
		"native":  makePod("a").withData().annotate(spec.KeyMinReadySeconds, "5").obj(),
		"classic": makePod("b").withData().annotate(spec.KeySidecarMode, "classic").obj(),
		"healthz": makePod("c").annotate(spec.KeyMinReadySeconds, "5").obj(),
	}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			once := mustInject(t, pod, DefaultConfig())
			twice := mustInject(t, once, DefaultConfig())
			ops, err := Patch(once, twice)
			if err != nil {
				t.Fatal(err)
			}
			if len(ops) != 0 {
				t.Fatalf("second pass is not empty: %v", ops)
			}
		})
	}
}

func TestInjectChangedConfigUpdatesExactly(t *testing.T) {
	pod := makePod("web").withData().annotate(spec.KeyMinReadySeconds, "5").obj()
	before := mustInject(t, pod, DefaultConfig())
	cfg := DefaultConfig()
	cfg.DataDeployerImage = "registry.invalid/autocrane:v2"
	after := mustInject(t, before, cfg)
	ops, err := Patch(before, after)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, op := range ops {
		paths = append(paths, op.Operation+" "+op.Path)
	}
	want := []string{
		"replace /metadata/annotations/autocrane.io~1injected",
		"replace /spec/initContainers/0/image",
	}
	if diff := cmp.Diff(want, slices.Sorted(slices.Values(paths))); diff != "" {
		t.Fatalf("ops (-want +got):\n%s", diff)
	}
}

func TestInjectSwitchesModeInPlace(t *testing.T) {
	pod := makePod("web").withData().obj()
	native := mustInject(t, pod, DefaultConfig())
	classicPod := mustInject(t, native, classic())
	if got := names(classicPod.Spec.InitContainers); !cmp.Equal(got, []string{ContainerDataDeployerInit}) {
		t.Errorf("init containers: %v", got)
	}
	if got := names(classicPod.Spec.Containers); !cmp.Equal(got, []string{"app", ContainerDataDeployer}) {
		t.Errorf("containers: %v", got)
	}
	back := mustInject(t, classicPod, DefaultConfig())
	if diff := cmp.Diff(native, back); diff != "" {
		t.Errorf("native -> classic -> native differs (-want +got):\n%s", diff)
	}
}

func TestInjectRemovesWhatIsNoLongerAsked(t *testing.T) {
	injected := mustInject(t, makePod("web").withData().annotate(spec.KeyMinReadySeconds, "5").obj(), DefaultConfig())
	delete(injected.Annotations, spec.KeyMinReadySeconds)
	noHealthz := mustInject(t, injected, DefaultConfig())
	if got := names(noHealthz.Spec.Containers); !cmp.Equal(got, []string{"app"}) {
		t.Errorf("containers: %v", got)
	}
	for k := range noHealthz.Annotations {
		if strings.HasPrefix(k, "data.") || k == spec.KeyStoreURL {
			delete(noHealthz.Annotations, k)
		}
	}
	bare := mustInject(t, noHealthz, DefaultConfig())
	want := makePod("web").obj()
	if diff := cmp.Diff(want, bare, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after removing every key the pod should be as it was (-want +got):\n%s", diff)
	}
}

func TestInjectKeepsOtherWebhooksEntriesInPlace(t *testing.T) {
	injected := mustInject(t, makePod("web").withData().annotate(spec.KeyMinReadySeconds, "5").obj(), DefaultConfig())
	// Another webhook appends its own sidecar and init container after ours.
	injected.Spec.Containers = append(injected.Spec.Containers, corev1.Container{Name: "mesh-proxy", Image: "mesh"})
	injected.Spec.InitContainers = append(injected.Spec.InitContainers, corev1.Container{Name: "mesh-init", Image: "mesh"})
	cfg := DefaultConfig()
	cfg.WatchdogHealthzImage = "registry.invalid/autocrane:v2"
	again := mustInject(t, injected, cfg)
	if got := names(again.Spec.Containers); !cmp.Equal(got, []string{"app", ContainerWatchdogHealthz, "mesh-proxy"}) {
		t.Errorf("containers: %v", got)
	}
	if got := names(again.Spec.InitContainers); !cmp.Equal(got, []string{ContainerDataDeployer, "mesh-init"}) {
		t.Errorf("init containers: %v", got)
	}
	// mesh-proxy is an app container too: it gets the read-only data mount.
	if got := again.Spec.Containers[2].VolumeMounts; len(got) != 1 || got[0].Name != VolumeData || !got[0].ReadOnly {
		t.Errorf("mesh-proxy mounts: %+v", got)
	}
}

func TestInjectNeverRemovesUserObjectsListedInAForgedRecord(t *testing.T) {
	forged := spec.Injected{Version: spec.InjectedVersion, Containers: []string{"app"}, Volumes: []string{"cache"}}
	pod := makePod("web").withData().
		volume(corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}).
		annotate(spec.AnnotationInjected, forged.String()).obj()
	out := mustInject(t, pod, DefaultConfig())
	if got := names(out.Spec.Containers); !cmp.Equal(got, []string{"app"}) {
		t.Errorf("containers: %v", got)
	}
	if out.Spec.Volumes[0].Name != "cache" {
		t.Errorf("volumes: %+v", out.Spec.Volumes)
	}
}

func TestInjectErrors(t *testing.T) {
	tests := map[string]struct {
		pod  *corev1.Pod
		want []string
	}{
		"container name clash": {
			pod:  makePod("web").withData().container(corev1.Container{Name: ContainerDataDeployer, Image: "x"}).obj(),
			want: []string{`spec.containers[1].name: Invalid value: "autocrane-datadeployer": container name "autocrane-datadeployer" is reserved for AutoCrane's injected container; rename it`},
		},
		"init container and volume clash": {
			pod: makePod("web").annotate(spec.KeyMinReadySeconds, "1").
				initContainer(corev1.Container{Name: ContainerWatchdogHealthz, Image: "x"}).
				volume(corev1.Volume{Name: VolumeData}).obj(),
			want: []string{
				`spec.initContainers[0].name: Invalid value: "autocrane-watchdoghealthz": container name "autocrane-watchdoghealthz" is reserved for AutoCrane's injected container; rename it`,
				`spec.volumes[0].name: Invalid value: "autocrane-data": volume name "autocrane-data" is reserved for AutoCrane's injected volume; rename it`,
			},
		},
		"port clash": {
			pod: makePod("web").withData().container(corev1.Container{Name: "metrics", Image: "x",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: DefaultDataDeployerPort}}}).obj(),
			want: []string{`spec.containers[1].ports[1].containerPort: Invalid value: 9780: port 9780 is taken by AutoCrane's injected container autocrane-datadeployer; pick another port, or move AutoCrane's with the manager's port flags`},
		},
		"location overlaps an app mount": {
			pod: makePod("web").withData().annotate(spec.KeyStoreLocation, "/srv/data").container(corev1.Container{Name: "side", Image: "x",
				VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/srv"}}}).obj(),
			want: []string{`metadata.annotations[store.autocrane.io/location]: Invalid value: "/srv/data": overlaps volume mount /srv (volume cache) of container side`},
		},
		"request above limit": {
			pod:  makePod("web").withData().annotate(spec.PrefixResources+"datadeployer", `{"requests":{"memory":"1Gi"}}`).obj(),
			want: []string{`metadata.annotations[resources.autocrane.io/datadeployer]: Invalid value: "memory=1Gi": the memory request 1Gi exceeds its limit 256Mi (defaults merged with the override)`},
		},
		"garbled record": {
			pod:  makePod("web").withData().annotate(spec.AnnotationInjected, "{").obj(),
			want: []string{`metadata.annotations[autocrane.io/injected]: Invalid value: "{": not a record written by AutoCrane's injector; remove the annotation to inject afresh`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Inject(tc.pod, parse(tc.pod), DefaultConfig())
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("want *InvalidError, got %v", err)
			}
			var got []string
			for _, e := range inv.Errs {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInjectKeepsUserDefaultContainer(t *testing.T) {
	pod := makePod("web").withData().annotate(spec.AnnotationDefaultContainer, "other").
		container(corev1.Container{Name: "other", Image: "x"}).obj()
	out := mustInject(t, pod, DefaultConfig())
	if got := out.Annotations[spec.AnnotationDefaultContainer]; got != "other" {
		t.Errorf("default container: %q", got)
	}
	rec, _ := spec.ParseInjected(out.Annotations[spec.AnnotationInjected])
	if slices.Contains(rec.Annotations, spec.AnnotationDefaultContainer) {
		t.Errorf("record claims %v", rec.Annotations)
	}
}

// The datadeployer's /watchdog becomes a watchdog of pods with data, and
// goes with the data; a user's own value for the key is kept.
func TestInjectRegistersTheDataDeployerWatchdog(t *testing.T) {
	pod := makePod("web").withData().obj()
	out := mustInject(t, pod, DefaultConfig())
	if got, want := out.Annotations[DataDeployerWatchdogKey], "POD_IP:9780/watchdog"; got != want {
		t.Fatalf("%s = %q, want %q", DataDeployerWatchdogKey, got, want)
	}
	if _, err := spec.ParseProbe("autocrane-data", out.Annotations[DataDeployerWatchdogKey], nil); err != nil {
		t.Fatalf("the registered watchdog does not parse: %v", err)
	}
	again := mustInject(t, out, DefaultConfig())
	if !equality.Semantic.DeepEqual(out, again) {
		t.Errorf("re-injection changed the pod")
	}
	// Without data, the registration goes.
	noData := out.DeepCopy()
	for k := range noData.Annotations {
		if strings.HasPrefix(k, spec.PrefixData) {
			delete(noData.Annotations, k)
		}
	}
	if got := mustInject(t, noData, DefaultConfig()); got.Annotations[DataDeployerWatchdogKey] != "" {
		t.Errorf("registration kept without data: %q", got.Annotations[DataDeployerWatchdogKey])
	}
	// A user's own value wins and is not claimed.
	user := makePod("web").withData().annotate(DataDeployerWatchdogKey, "POD_IP:9999/mine").obj()
	got := mustInject(t, user, DefaultConfig())
	rec, _ := spec.ParseInjected(got.Annotations[spec.AnnotationInjected])
	if got.Annotations[DataDeployerWatchdogKey] != "POD_IP:9999/mine" || slices.Contains(rec.Annotations, DataDeployerWatchdogKey) {
		t.Errorf("user value %q, record %v", got.Annotations[DataDeployerWatchdogKey], rec.Annotations)
	}
}

func TestInjectMergesResourceOverrides(t *testing.T) {
	pod := makePod("web").withData().annotate(spec.PrefixResources+"datadeployer", `{"limits":{"memory":"1Gi"},"requests":{"cpu":"50m"}}`).obj()
	out := mustInject(t, pod, DefaultConfig())
	r := out.Spec.InitContainers[0].Resources
	if r.Limits.Memory().String() != "1Gi" || r.Requests.Cpu().String() != "50m" || r.Requests.Memory().String() != "32Mi" || r.Limits.Cpu().String() != "500m" {
		t.Errorf("resources: %+v", r)
	}
	def := DefaultConfig().Resources[spec.ComponentDataDeployer]
	if def.Limits.Memory().String() != "256Mi" {
		t.Error("the override leaked into the defaults")
	}
}

func TestInjectedContainersMeetRestrictedPodSecurity(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{"native": DefaultConfig(), "classic": classic()} {
		out := mustInject(t, makePod("web").withData().annotate(spec.KeyMinReadySeconds, "5").obj(), cfg)
		for _, r := range eval.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &out.ObjectMeta, &out.Spec) {
			if !r.Allowed {
				t.Errorf("%s: restricted check failed: %s: %s", name, r.ForbiddenReason, r.ForbiddenDetail)
			}
		}
		for _, c := range append(out.Spec.InitContainers, out.Spec.Containers...) {
			if c.Name == "app" {
				continue
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: %s lacks requests or limits", name, c.Name)
			}
			if !hasMount(c, serviceAccountDir) {
				t.Errorf("%s: %s does not mask the service account token", name, c.Name)
			}
		}
	}
}

func TestNothingAskedChangesNothing(t *testing.T) {
	pod := makePod("web").annotate("example.com/x", "y").obj()
	out := mustInject(t, pod, DefaultConfig())
	if diff := cmp.Diff(pod, out); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := DefaultConfig()
	bad.DataDeployerImage = ""
	bad.SidecarMode = "both"
	bad.WatchdogHealthzPort = bad.DataDeployerPort
	bad.ImagePullPolicy = "Sometimes"
	bad.Resources = map[spec.Component]corev1.ResourceRequirements{
		spec.ComponentDataDeployer: requirements("1", "32Mi", "500m", "64Mi"),
	}
	want := "images must not be empty\nsidecar mode \"both\": must be native or classic\nthe datadeployer and watchdoghealthz ports must differ (both 9780)\n" +
		"resources of datadeployer: the default cpu request 1 exceeds its limit 500m\nresources of watchdoghealthz: missing defaults\n" +
		"image pull policy \"Sometimes\": must be Always, IfNotPresent or Never"
	if err := bad.Validate(); err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func hasMount(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

// A token Secret reaches the datadeployer only: a Secret volume of the one
// key, mounted read-only in the datadeployer and named by --token-file.
func TestInjectMountsTheStoreTokenForTheDataDeployerOnly(t *testing.T) {
	pod := makePod("web").withData().annotate(spec.KeyStoreTokenSecret, "repo-token").obj()
	for _, mode := range []spec.SidecarMode{spec.SidecarNative, spec.SidecarClassic} {
		cfg := DefaultConfig()
		cfg.SidecarMode = mode
		out := mustInject(t, pod, cfg)
		var vol *corev1.Volume
		for i := range out.Spec.Volumes {
			if out.Spec.Volumes[i].Name == VolumeStoreToken {
				vol = &out.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.Secret == nil || vol.Secret.SecretName != "repo-token" || len(vol.Secret.Items) != 1 || vol.Secret.Items[0].Key != "token" {
			t.Fatalf("%s: token volume = %+v", mode, vol)
		}
		all := append(append([]corev1.Container{}, out.Spec.InitContainers...), out.Spec.Containers...)
		for _, c := range all {
			mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == VolumeStoreToken })
			isDeployer := c.Name == ContainerDataDeployer || c.Name == ContainerDataDeployerInit
			if mounted != isDeployer {
				t.Errorf("%s: container %s mounts the token: %v", mode, c.Name, mounted)
			}
			if isDeployer && !slices.Contains(c.Args, "--token-file="+StoreTokenDir+"/token") {
				t.Errorf("%s: %s args %v lack --token-file", mode, c.Name, c.Args)
			}
		}
		if again := mustInject(t, out, cfg); !equality.Semantic.DeepEqual(out, again) {
			t.Errorf("%s: re-injection changed the pod", mode)
		}
	}
}
