package injector

import (
	"encoding/json"
	"fmt"
	"slices"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// Patch returns the JSON patch that turns original into mutated, safe to
// apply to the raw object the API server sent:
//
//   - Both sides are marshalled from the same Go types, so fields that
//     k8s.io/api does not know appear in neither and are never touched.
//   - jsonpatch diffs arrays index by index. Removing an entry from the
//     middle of a list would shift the entries after it, and the diff would
//     rewrite each of them in place, leaving their unknown fields behind on
//     the wrong entry. So entries of name-keyed lists (containers, init
//     containers, volumes, volume mounts) that mutated no longer has are
//     removed first, by index, from the end; after that, Inject's output
//     lines up with the original index by index (it replaces its entries in
//     place and appends new ones), and the plain diff is exact.
//
// It expects mutated to come from Inject(original, ...).
func Patch(original, mutated *corev1.Pod) ([]jsonpatch.Operation, error) {
	trimmed := original.DeepCopy()
	var ops []jsonpatch.Operation
	for _, l := range []struct {
		path     string
		have     *[]corev1.Container
		want     []corev1.Container
		original []corev1.Container
	}{
		{"/spec/initContainers", &trimmed.Spec.InitContainers, mutated.Spec.InitContainers, original.Spec.InitContainers},
		{"/spec/containers", &trimmed.Spec.Containers, mutated.Spec.Containers, original.Spec.Containers},
	} {
		// Mounts first: their paths use container indices before any
		// container is removed.
		for i := range *l.have {
			c := &(*l.have)[i]
			j := slices.IndexFunc(l.want, func(w corev1.Container) bool { return w.Name == c.Name })
			if j < 0 {
				continue
			}
			keep := namesOf(l.want[j].VolumeMounts, mountName)
			c.VolumeMounts, ops = removeMissing(c.VolumeMounts, keep, fmt.Sprintf("%s/%d/volumeMounts", l.path, i), mountName, ops)
		}
		*l.have, ops = removeMissing(*l.have, namesOf(l.want, containerName), l.path, containerName, ops)
	}
	trimmed.Spec.Volumes, ops = removeMissing(trimmed.Spec.Volumes, namesOf(mutated.Spec.Volumes, volumeName), "/spec/volumes", volumeName, ops)

	a, err := json.Marshal(trimmed)
	if err != nil {
		return nil, fmt.Errorf("marshal original pod: %w", err)
	}
	b, err := json.Marshal(mutated)
	if err != nil {
		return nil, fmt.Errorf("marshal mutated pod: %w", err)
	}
	rest, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		return nil, fmt.Errorf("diff pods: %w", err)
	}
	return append(ops, rest...), nil
}

// removeMissing drops the entries whose name is not in keep, from the last
// to the first, recording a remove operation for each.
func removeMissing[T any](list []T, keep []string, path string, name func(*T) string, ops []jsonpatch.Operation) ([]T, []jsonpatch.Operation) {
	for i := len(list) - 1; i >= 0; i-- {
		if slices.Contains(keep, name(&list[i])) {
			continue
		}
		ops = append(ops, jsonpatch.NewOperation("remove", fmt.Sprintf("%s/%d", path, i), nil))
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		list = nil
	}
	return list, ops
}

func namesOf[T any](list []T, name func(*T) string) []string {
	out := make([]string, len(list))
	for i := range list {
		out[i] = name(&list[i])
	}
	return out
}
