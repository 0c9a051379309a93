package injector

// FuzzMutate feeds arbitrary pods and namespace annotations to Mutate, the
// whole injection decision, and checks what the webhook relies on:
//
//   - no panic (and no hang: the fuzzing engine reports an input that
//     stalls a worker);
//   - Mutate never changes its argument;
//   - a failure is an *InvalidError naming at least one field, whose message
//     stays under 128 KiB plus twice the
//     input;
//   - idempotency: Mutate over its own result, and over that result as the
//     API server would store it (JSON and back), is Unchanged or Skipped;
//   - Patch(original, result) applied with evanphx/json-patch to the
//     original's JSON gives the result;
//   - no user container, init container or volume disappears or changes,
//     and user volume mounts stay as they were (only the data mount is
//     added);
//   - every injected container has the restricted security context, no
//     service-account token and no environment; app containers get the data
//     volume read-only; the autocrane.io/injected record lists exactly what
//     was injected.
//
// Run it with:
//
//	go test ./injector/ -run '^$' -fuzz '^FuzzMutate$' -fuzztime 30s

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/spec"
	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// maxAnswer bounds, with twice the input's size, the message of a failed
// Mutate: the webhook sends it back in full.
const maxAnswer = 128 << 10

// decodeAPIPod decodes a pod as the API server and the webhook do: keys
// match case-sensitively, unknown fields are dropped.
func decodeAPIPod(b []byte) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := utiljson.Unmarshal(b, pod); err != nil {
		return nil, err
	}
	return pod, nil
}

// stored is pod as the API server would store it and send it back: JSON and
// back again.
func stored(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	b, err := json.Marshal(pod)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	out, err := decodeAPIPod(b)
	if err != nil {
		t.Fatalf("the pod's own JSON does not decode: %v\n%s", err, b)
	}
	return out
}

func fuzzSeedPods(f *testing.F) []*corev1.Pod {
	secure := makePod("web")
	pods := []*corev1.Pod{
		secure.obj(),
		makePod("web").withData().obj(),
		makePod("web").withData().annotate(spec.KeySidecarMode, "classic", spec.KeyMinReadySeconds, "5").obj(),
		makePod("web").annotate(spec.KeyMinReadySeconds, "30", spec.KeyAlwaysHealthyAfterSeconds, "600").obj(),
		makePod("web").withData().annotate(spec.KeyStoreLocation, "/srv/models",
			spec.PrefixResources+"datadeployer", `{"requests":{"cpu":"20m"},"limits":{"memory":"1Gi"}}`).obj(),
		makePod("web").withData().container(corev1.Container{Name: "second", Image: "x",
			Ports:        []corev1.ContainerPort{{ContainerPort: 9780}},
			VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/data/cache"}}}).obj(),
		makePod("web").withData().container(corev1.Container{Name: ContainerDataDeployer, Image: "mine"}).obj(),
		makePod("web").withData().volume(corev1.Volume{Name: VolumeData}).obj(),
		makePod("web").withData().annotate(spec.AnnotationInjected, `{"v":1,"hash":"h","containers":["app"],"volumes":["user"],"mounts":["user"]}`).
			volume(corev1.Volume{Name: "user"}).obj(),
		makePod("web").withData().annotate(spec.AnnotationInjected, `{"v":1`).obj(),
		makePod("web").withData().container(corev1.Container{Name: "app"}).obj(),
		makePod("web").annotate(spec.LabelInject, "enabled").obj(),
	}
	// Pods already injected, in both modes, and one switched between them.
	for _, p := range []*corev1.Pod{pods[1], pods[2], pods[3]} {
		res, err := Mutate(spec.Namespace{Name: "team"}, p, DefaultConfig())
		if err != nil {
			f.Fatalf("seed: %v", err)
		}
		pods = append(pods, res.Pod)
		switched := res.Pod.DeepCopy()
		switched.Annotations[spec.KeySidecarMode] = "native"
		if _, ok := res.Pod.Annotations[spec.KeySidecarMode]; !ok {
			switched.Annotations[spec.KeySidecarMode] = "classic"
		}
		pods = append(pods, switched)
		asked := res.Pod.DeepCopy()
		delete(asked.Annotations, spec.PrefixData+"models")
		delete(asked.Annotations, spec.KeyMinReadySeconds)
		delete(asked.Annotations, spec.KeyAlwaysHealthyAfterSeconds)
		pods = append(pods, asked)
	}
	return pods
}

func FuzzMutate(f *testing.F) {
	for _, pod := range fuzzSeedPods(f) {
		b, err := json.Marshal(pod)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte(`{}`), "")
		f.Add(b, []byte(`{"store.autocrane.io/location":"/srv","inject.autocrane.io/sidecar-mode":"classic"}`), "enabled")
	}
	f.Add([]byte(`{"metadata":{"annotations":{"data.autocrane.io/m":"m"}},"spec":{"containers":[{"name":"app"}]}}`),
		[]byte(`{"store.autocrane.io/url":"http://repo.team:8080"}`), "")
	f.Add([]byte(`{"metadata":{"labels":{"autocrane.io/inject":"yes"}}}`), []byte(`{}`), "enabled")
	f.Add([]byte(`{"metadata":{"labels":{"autocrane.io/inject":"disabled"},"annotations":{"data.autocrane.io/m":"m"}}}`), []byte(`{}`), "")
	f.Add([]byte(`{"spec":{"containers":[{"name":"app"}]}}`), []byte(`{"resources.autocrane.io/datadeployer":"{\"requests\":{\"cpu\":\"1\"}}"}`), "disabled")
	f.Add([]byte(`{}`), []byte(`not json`), "enabled")

	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, podJSON, nsAnnotations []byte, nsInject string) {
		pod, err := decodeAPIPod(podJSON)
		if err != nil {
			return
		}
		var nsAnn map[string]string
		_ = json.Unmarshal(nsAnnotations, &nsAnn)
		ns := spec.Namespace{Name: "team", Annotations: nsAnn}
		if nsInject != "" {
			ns.Labels = map[string]string{spec.LabelInject: nsInject}
		}
		size := len(podJSON) + len(nsAnnotations) + len(nsInject)
		before := pod.DeepCopy()

		var res Result
		res, err = Mutate(ns, pod, cfg)
		if !reflect.DeepEqual(before, pod) {
			t.Fatalf("Mutate changed its argument (-before +after):\n%s", cmp.Diff(before, pod))
		}
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) || len(inv.Errs) == 0 {
				t.Fatalf("Mutate failed with %T %v, not an *InvalidError naming a field", err, err)
			}
			// The webhook sends every message (apierrors.NewInvalid joins
			// them, in time quadratic in their total size): the answer must
			// stay cheap and not much larger than the question.
			var msg string
			msg = err.Error()
			if n := len(msg); n > maxAnswer+2*size {
				t.Fatalf("%d errors make a %d-byte message for a %d-byte input", len(inv.Errs), n, size)
			}
			return
		}
		switch res.Outcome {
		case Skipped, Unchanged:
			if res.Pod != pod {
				t.Fatalf("%s, but the result is not the input pod", res.Outcome)
			}
		case Injected:
			if res.Pod == nil || equality.Semantic.DeepEqual(pod, res.Pod) {
				t.Fatal("injected, but the pod did not change")
			}
		default:
			t.Fatalf("unknown outcome %q", res.Outcome)
		}
		if res.Reason == "" {
			t.Fatal("no reason")
		}
		if res.Outcome != Injected {
			return
		}
		out := res.Pod

		// Idempotency: over the result itself, and as the API server stores it.
		for what, again := range map[string]*corev1.Pod{"result": out.DeepCopy(), "stored result": stored(t, out)} {
			var res2 Result
			var err2 error
			res2, err2 = Mutate(ns, again, cfg)
			if err2 != nil {
				t.Fatalf("Mutate over its %s failed: %v", what, err2)
			}
			if res2.Outcome != Unchanged && res2.Outcome != Skipped {
				t.Fatalf("Mutate over its %s: %s again:\n%s", what, res2.Outcome, cmp.Diff(again, res2.Pod))
			}
		}

		checkPatch(t, pod, out, size)
		checkUserObjectsKept(t, pod, out)
		checkInjectedObjects(t, out)
	})
}

// checkPatch applies Patch(original, mutated) to the original's JSON.
func checkPatch(t *testing.T, original, mutated *corev1.Pod, size int) {
	t.Helper()
	var ops []byte
	func() {
		p, err := Patch(original, mutated)
		if err != nil {
			t.Fatalf("Patch: %v", err)
		}
		if ops, err = json.Marshal(p); err != nil {
			t.Fatalf("marshal patch: %v", err)
		}
	}()
	doc, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatalf("DecodePatch: %v\n%s", err, ops)
	}
	var patched []byte
	patched, err = patch.Apply(doc)
	if err != nil {
		t.Fatalf("the patch does not apply: %v\n%s", err, ops)
	}
	got, err := decodeAPIPod(patched)
	if err != nil {
		t.Fatalf("the patched pod does not decode: %v", err)
	}
	if !equality.Semantic.DeepEqual(got, mutated) {
		t.Fatalf("the patched pod differs from Mutate's result (-result +patched):\n%s\npatch: %s", cmp.Diff(mutated, got), ops)
	}
}

// record is the autocrane.io/injected record of pod; the zero record when
// there is none.
func record(t *testing.T, pod *corev1.Pod) spec.Injected {
	t.Helper()
	rec, err := spec.ParseInjected(pod.Annotations[spec.AnnotationInjected])
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	return rec
}

// owned reports whether the previous pass injected name: listed in its
// record and reserved. Only such entries may be replaced or removed.
func owned(name string, listed map[string]bool, reserved []string) bool {
	return listed[name] && slices.Contains(reserved, name)
}

// set is the set of names in list (a record may list thousands).
func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, n := range list {
		m[n] = true
	}
	return m
}

func checkUserObjectsKept(t *testing.T, original, mutated *corev1.Pod) {
	t.Helper()
	prev, now := record(t, original), record(t, mutated)
	prevInits := set(prev.InitContainers)
	userInits := slices.DeleteFunc(slices.Clone(original.Spec.InitContainers), func(c corev1.Container) bool {
		return owned(c.Name, prevInits, reservedContainers)
	})
	keptInits := slices.DeleteFunc(slices.Clone(mutated.Spec.InitContainers), func(c corev1.Container) bool {
		return slices.Contains(now.InitContainers, c.Name)
	})
	if !equality.Semantic.DeepEqual(userInits, keptInits) {
		t.Fatalf("user init containers changed (-before +after):\n%s", cmp.Diff(userInits, keptInits))
	}
	prevVolumes := set(prev.Volumes)
	userVolumes := slices.DeleteFunc(slices.Clone(original.Spec.Volumes), func(v corev1.Volume) bool {
		return owned(v.Name, prevVolumes, reservedVolumes)
	})
	keptVolumes := slices.DeleteFunc(slices.Clone(mutated.Spec.Volumes), func(v corev1.Volume) bool {
		return slices.Contains(now.Volumes, v.Name)
	})
	if !equality.Semantic.DeepEqual(userVolumes, keptVolumes) {
		t.Fatalf("user volumes changed (-before +after):\n%s", cmp.Diff(userVolumes, keptVolumes))
	}
	// Containers: equal but for the data mount; user mounts (other than a
	// previous pass's) stay in order.
	userMounts := func(c corev1.Container, listed map[string]bool) corev1.Container {
		c = *c.DeepCopy()
		c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return owned(m.Name, listed, reservedVolumes)
		})
		return c
	}
	var users, kept []corev1.Container
	prevContainers, prevMounts, nowMounts := set(prev.Containers), set(prev.Mounts), set(now.Mounts)
	for _, c := range original.Spec.Containers {
		if !owned(c.Name, prevContainers, reservedContainers) {
			users = append(users, userMounts(c, prevMounts))
		}
	}
	for _, c := range mutated.Spec.Containers {
		if !slices.Contains(now.Containers, c.Name) {
			kept = append(kept, userMounts(c, nowMounts))
		}
	}
	if !equality.Semantic.DeepEqual(users, kept) {
		t.Fatalf("user containers changed (-before +after):\n%s", cmp.Diff(users, kept))
	}
}

func checkInjectedObjects(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if _, ok := pod.Annotations[spec.AnnotationInjected]; !ok {
		// Everything injected before was removed: nothing of ours is left.
		for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
			for _, m := range c.VolumeMounts {
				if m.Name == VolumeData {
					t.Fatalf("no record, but container %q mounts %s", c.Name, VolumeData)
				}
			}
		}
		return
	}
	rec := record(t, pod)
	if rec.Version != spec.InjectedVersion || !strings.HasPrefix(rec.Hash, "sha256:") {
		t.Fatalf("record %+v", rec)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, name := range rec.Volumes {
		if _, ok := volumes[name]; !ok || !slices.Contains(reservedVolumes, name) {
			t.Fatalf("record lists volume %q, which the pod lacks or which is not AutoCrane's", name)
		}
	}
	injected := 0
	for _, group := range []struct {
		listed []string
		cs     []corev1.Container
	}{{rec.InitContainers, pod.Spec.InitContainers}, {rec.Containers, pod.Spec.Containers}} {
		for _, c := range group.cs {
			if !slices.Contains(group.listed, c.Name) {
				for _, m := range c.VolumeMounts {
					if m.Name == VolumeData && !m.ReadOnly {
						t.Fatalf("app container %q mounts the data volume read-write", c.Name)
					}
				}
				continue
			}
			injected++
			if !slices.Contains(reservedContainers, c.Name) {
				t.Fatalf("record lists container %q, which is not AutoCrane's", c.Name)
			}
			checkRestricted(t, c, volumes)
		}
		for _, name := range group.listed {
			if !slices.ContainsFunc(group.cs, func(c corev1.Container) bool { return c.Name == name }) {
				t.Fatalf("record lists container %q, which the pod lacks", name)
			}
		}
	}
	if injected == 0 {
		t.Fatal("injected, but no injected container")
	}
}

// checkRestricted checks an injected container against the restricted Pod
// Security profile and the no-credentials promise.
func checkRestricted(t *testing.T, c corev1.Container, volumes map[string]corev1.Volume) {
	t.Helper()
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatalf("%s: no security context", c.Name)
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot, sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Fatalf("%s: may run as root", c.Name)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation, sc.Privileged != nil && *sc.Privileged:
		t.Fatalf("%s: may escalate privileges", c.Name)
	case sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Fatalf("%s: capabilities %+v", c.Name, sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Fatalf("%s: seccomp %+v", c.Name, sc.SeccompProfile)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Fatalf("%s: writable root file system", c.Name)
	case len(c.Env) > 0 || len(c.EnvFrom) > 0:
		t.Fatalf("%s: has environment variables", c.Name)
	}
	masked := false
	for _, m := range c.VolumeMounts {
		if m.MountPath == serviceAccountDir {
			v := volumes[m.Name]
			masked = m.Name == VolumeNoToken && v.EmptyDir != nil && v.Projected == nil && v.Secret == nil
		}
	}
	if !masked {
		t.Fatalf("%s: the service-account token directory is not masked", c.Name)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Fatalf("%s: no %s limit: %v", c.Name, r, c.Resources.Limits)
		}
	}
}
