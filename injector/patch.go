package injector

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/autocrane/autocrane/spec"
)

// Patch returns the JSON patch that turns original into mutated, where
// mutated came from Inject(original, ...). It is safe to apply to the raw
// object the API server sent, and cheap on huge pods:
//
//   - It diffs only what Inject can change: the annotations, the init
//     container, container and volume lists, and the volume mounts of the
//     other containers. A pod's 1 MiB of environment variables is never
//     marshalled.
//   - Entries are marshalled from the Go types on both sides, so fields that
//     k8s.io/api does not know appear in neither and are never touched.
//   - jsonpatch diffs arrays index by index, so removing an entry from the
//     middle of a list would shift the entries after it and rewrite each of
//     them in place, leaving their unknown fields on the wrong entry. So
//     entries that mutated no longer has are removed first, by index, from
//     the end. After that, Inject's output lines up with the original index
//     by index (it replaces its own entries in place and appends new ones).
func Patch(original, mutated *corev1.Pod) ([]jsonpatch.Operation, error) {
	p := patcher{}
	p.annotations(original.Annotations, mutated.Annotations)
	for _, l := range []struct {
		path      string
		have, out []corev1.Container
	}{
		{"/spec/initContainers", original.Spec.InitContainers, mutated.Spec.InitContainers},
		{"/spec/containers", original.Spec.Containers, mutated.Spec.Containers},
	} {
		p.containers(l.path, l.have, l.out)
	}
	diffList(&p, "/spec/volumes", original.Spec.Volumes, mutated.Spec.Volumes, volumeName, func(v *corev1.Volume) bool {
		return slices.Contains(reservedVolumes, v.Name)
	})
	return p.ops, p.err
}

type patcher struct {
	ops []jsonpatch.Operation
	err error
}

func (p *patcher) add(op, path string, value any) {
	p.ops = append(p.ops, jsonpatch.NewOperation(op, path, value))
}

// annotations diffs two annotation maps key by key.
func (p *patcher) annotations(have, want map[string]string) {
	switch {
	case len(have) == 0 && len(want) == 0:
		return
	case len(want) == 0:
		p.add("remove", "/metadata/annotations", nil)
		return
	case len(have) == 0:
		// Absent from the raw object (an empty map is not marshalled).
		p.add("add", "/metadata/annotations", want)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			p.add("remove", "/metadata/annotations/"+escape(k), nil)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := have[k]; !ok {
			p.add("add", "/metadata/annotations/"+escape(k), want[k])
		} else if v != want[k] {
			p.add("replace", "/metadata/annotations/"+escape(k), want[k])
		}
	}
}

// containers diffs a container list: the injector's own containers whole,
// the others only in their volume mounts, which is all Inject changes there.
func (p *patcher) containers(path string, have, want []corev1.Container) {
	trimmed := slices.Clone(have)
	wantIdx := make(map[string]int, len(want))
	for j := range want {
		wantIdx[want[j].Name] = j
	}
	// Mounts first: their paths use container indices before any container
	// is removed.
	for i := range trimmed {
		j, ok := wantIdx[trimmed[i].Name]
		if !ok || slices.Contains(reservedContainers, trimmed[i].Name) {
			continue
		}
		diffList(p, fmt.Sprintf("%s/%d/volumeMounts", path, i), trimmed[i].VolumeMounts, want[j].VolumeMounts, mountName,
			func(*corev1.VolumeMount) bool { return true })
	}
	diffList(p, path, trimmed, want, containerName, func(c *corev1.Container) bool {
		return slices.Contains(reservedContainers, c.Name)
	})
}

// diffList diffs a name-keyed list. Entries missing from want are removed
// (from the end, so no index moves under a later operation); entries of
// want past the end of have are appended; entries at the same index are
// diffed only when owned says the injector writes them (the others are
// equal by Inject's contract). An absent list is added whole.
func diffList[T any](p *patcher, path string, have, want []T, name func(*T) string, owned func(*T) bool) {
	keep := spec.NameSet(namesOf(want, name))
	existed := len(have) > 0
	have = slices.Clone(have)
	for i := len(have) - 1; i >= 0; i-- {
		if !keep[name(&have[i])] {
			p.add("remove", fmt.Sprintf("%s/%d", path, i), nil)
			have = slices.Delete(have, i, i+1)
		}
	}
	if len(want) == 0 {
		return
	}
	if len(have) == 0 {
		if existed {
			// Every entry was removed one by one: the array is there, empty.
			for i := range want {
				p.add("add", fmt.Sprintf("%s/%d", path, i), want[i])
			}
			return
		}
		p.add("add", path, want)
		return
	}
	for i := range want {
		if i >= len(have) {
			p.add("add", path+"/-", want[i])
			continue
		}
		if owned(&want[i]) {
			p.diff(fmt.Sprintf("%s/%d", path, i), have[i], want[i])
		}
	}
}

// diff adds the operations that turn a into b, below path.
func (p *patcher) diff(path string, a, b any) {
	if p.err != nil {
		return
	}
	ja, err := json.Marshal(a)
	if err != nil {
		p.err = fmt.Errorf("marshal %s: %w", path, err)
		return
	}
	jb, err := json.Marshal(b)
	if err != nil {
		p.err = fmt.Errorf("marshal %s: %w", path, err)
		return
	}
	ops, err := jsonpatch.CreatePatch(ja, jb)
	if err != nil {
		p.err = fmt.Errorf("diff %s: %w", path, err)
		return
	}
	for _, op := range ops {
		op.Path = path + op.Path
		p.ops = append(p.ops, op)
	}
}

// escape makes a map key a JSON pointer token (RFC 6901).
func escape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func namesOf[T any](list []T, name func(*T) string) []string {
	out := make([]string, len(list))
	for i := range list {
		out[i] = name(&list[i])
	}
	return out
}
