package injector

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"

	"github.com/autocrane/autocrane/spec"
)

// applyToRaw adds unknown fields to the marshalled pod, applies the patch
// from original to mutated, and returns the result as generic JSON.
func applyToRaw(t *testing.T, original, mutated *corev1.Pod, addUnknown func(map[string]any)) map[string]any {
	t.Helper()
	b, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	addUnknown(raw)
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	ops, err := Patch(original, mutated)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(pb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(b)
	if err != nil {
		t.Fatalf("apply %s: %v", pb, err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func containerByName(t *testing.T, pod map[string]any, list, name string) map[string]any {
	t.Helper()
	for _, c := range pod["spec"].(map[string]any)[list].([]any) {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("no %s %q", list, name)
	return nil
}

func TestPatchKeepsUnknownFields(t *testing.T) {
	pod := makePod("web").withData().annotate(spec.KeyMinReadySeconds, "5").
		container(corev1.Container{Name: "second", Image: "x"}).obj()
	mutated := mustInject(t, pod, DefaultConfig())
	got := applyToRaw(t, pod, mutated, func(raw map[string]any) {
		raw["spec"].(map[string]any)["futureField"] = map[string]any{"a": 1.0}
		for _, c := range raw["spec"].(map[string]any)["containers"].([]any) {
			c.(map[string]any)["futureContainerField"] = true
		}
	})
	if got["spec"].(map[string]any)["futureField"] == nil {
		t.Error("spec.futureField was removed")
	}
	for _, name := range []string{"app", "second"} {
		if containerByName(t, got, "containers", name)["futureContainerField"] != true {
			t.Errorf("container %s lost futureContainerField", name)
		}
	}
	if containerByName(t, got, "initContainers", ContainerDataDeployer) == nil {
		t.Error("not injected")
	}
}

// TestPatchRemovingFromTheMiddleMovesNothing switches a pod from classic to
// native mode: the classic sidecar leaves the middle of the container list,
// and the user's container after it must keep its unknown field.
func TestPatchRemovingFromTheMiddleMovesNothing(t *testing.T) {
	classicPod := mustInject(t, makePod("web").withData().obj(), classic())
	classicPod.Spec.Containers = append(classicPod.Spec.Containers, corev1.Container{Name: "mesh", Image: "mesh"})
	native := mustInject(t, classicPod, DefaultConfig())
	got := applyToRaw(t, classicPod, native, func(raw map[string]any) {
		for _, c := range raw["spec"].(map[string]any)["containers"].([]any) {
			if m := c.(map[string]any); m["name"] == "mesh" {
				m["futureContainerField"] = "kept"
			}
		}
	})
	mesh := containerByName(t, got, "containers", "mesh")
	if mesh["futureContainerField"] != "kept" {
		t.Errorf("mesh lost its unknown field: %v", mesh)
	}
	// Everything else equals the typed result.
	delete(mesh, "futureContainerField")
	b, _ := json.Marshal(got)
	var typed corev1.Pod
	if err := json.Unmarshal(b, &typed); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(native, &typed); diff != "" {
		t.Errorf("patched raw differs from Inject's result (-want +got):\n%s", diff)
	}
}

// TestPatchTransitions applies each transition's patch to the raw original
// and checks the result is exactly Inject's, including lists that empty or
// appear, and annotations that go away.
func TestPatchTransitions(t *testing.T) {
	bare := makePod("web").obj()
	healthz := mustInject(t, makePod("web").annotate(spec.KeyMinReadySeconds, "5").obj(), DefaultConfig())
	healthzRemoved := healthz.DeepCopy()
	delete(healthzRemoved.Annotations, spec.KeyMinReadySeconds)
	data := makePod("web").withData().
		volume(corev1.Volume{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}).obj()
	data.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}
	dataInjected := mustInject(t, data, DefaultConfig())
	dataRemoved := dataInjected.DeepCopy()
	for k := range dataRemoved.Annotations {
		if k != spec.AnnotationInjected && k != spec.AnnotationDefaultContainer {
			delete(dataRemoved.Annotations, k)
		}
	}
	tests := map[string]*corev1.Pod{
		"nothing asked":                        bare,
		"healthz added to a pod without lists": makePod("web").annotate(spec.KeyMinReadySeconds, "5").obj(),
		"every injected list entry removed":    healthzRemoved,
		"data next to user volumes and mounts": data,
		"data removed, user entries stay":      dataRemoved,
		"classic to native":                    mustInject(t, makePod("web").withData().obj(), classic()),
	}
	for name, pod := range tests {
		t.Run(name, func(t *testing.T) {
			want := mustInject(t, pod, DefaultConfig())
			got := applyToRaw(t, pod, want, func(map[string]any) {})
			b, _ := json.Marshal(got)
			var typed corev1.Pod
			if err := json.Unmarshal(b, &typed); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, &typed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("patched raw differs from Inject's result (-want +got):\n%s", diff)
			}
		})
	}
}
