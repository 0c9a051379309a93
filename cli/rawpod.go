package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	evanphx "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// InjectPodJSON injects one pod given as raw JSON, the way the webhook does:
// it decodes raw into a corev1.Pod, calls injector.Mutate with ns and cfg,
// computes injector.Patch between the decoded and the mutated pod, and
// applies that patch to raw itself. Fields that k8s.io/api does not know are
// therefore kept, as the API server keeps them when it applies the
// webhook's patch.
//
// raw may also be a pod template ({"metadata": ..., "spec": ...}); the inject
// command uses this same path for every Pod document and every pod template.
//
// Unless the outcome is injector.Injected, the returned JSON is raw itself.
// Keys the Mutate call rejects give an *injector.InvalidError, whose field
// paths are relative to raw. InjectPodJSON also fails, rather than print a
// damaged pod, when the patched raw does not decode to the pod Mutate
// returned, or when a field unknown to k8s.io/api would be lost or moved to
// another container (see checkUnknownKept).
func InjectPodJSON(raw []byte, ns spec.Namespace, cfg injector.Config) ([]byte, injector.Outcome, error) {
	if nonNull(raw) == nil {
		raw = []byte("{}")
	}
	var pod corev1.Pod
	// Case-sensitive, like the API server's decoder: "Image" is not "image".
	if err := utiljson.Unmarshal(raw, &pod); err != nil {
		return nil, "", fmt.Errorf("decode pod: %w", err)
	}
	res, err := injector.Mutate(ns, &pod, cfg)
	if err != nil {
		return nil, "", err
	}
	if res.Outcome != injector.Injected {
		return raw, res.Outcome, nil
	}
	ops, err := injector.Patch(&pod, res.Pod)
	if err != nil {
		return nil, "", err
	}
	opsJSON, err := json.Marshal(ops)
	if err != nil {
		return nil, "", fmt.Errorf("encode patch: %w", err)
	}
	patch, err := evanphx.DecodePatch(opsJSON)
	if err != nil {
		return nil, "", fmt.Errorf("decode patch: %w", err)
	}
	// The patch is computed from typed pods, which always have metadata and
	// spec; raw may lack them, and a patch cannot add below a missing parent.
	target, err := ensureObjects(raw, "metadata", "spec")
	if err != nil {
		return nil, "", err
	}
	out, err := patch.Apply(target)
	if err != nil {
		return nil, "", fmt.Errorf("apply patch %s: %w", opsJSON, err)
	}
	// The result must decode to exactly the pod Mutate returned; anything
	// else is a bug in AutoCrane, better reported than printed.
	var got corev1.Pod
	if err := utiljson.Unmarshal(out, &got); err != nil {
		return nil, "", fmt.Errorf("decode patched pod: %w", err)
	}
	if !equality.Semantic.DeepEqual(&got, res.Pod) {
		return nil, "", fmt.Errorf("bug: the patch %s does not turn the pod into the injected pod", opsJSON)
	}
	if err := checkUnknownKept(raw, out); err != nil {
		return nil, "", err
	}
	return out, injector.Injected, nil
}

// ensureObjects returns obj with each of keys set to {} where it is missing
// or null; obj itself when nothing was missing.
func ensureObjects(obj []byte, keys ...string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	changed := false
	for _, k := range keys {
		if nonNull(m[k]) == nil {
			m[k] = json.RawMessage("{}")
			changed = true
		}
	}
	if !changed {
		return obj, nil
	}
	return json.Marshal(m)
}

// getRaw returns the value at path (object keys) in doc; nil when it or a
// parent is missing or null. A parent that is not an object is an error.
func getRaw(doc []byte, path []string) ([]byte, error) {
	cur := nonNull(doc)
	for i, key := range path {
		if cur == nil {
			return nil, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(cur, &m); err != nil {
			return nil, fmt.Errorf("%s is not an object", dotted(path[:i]))
		}
		cur = nonNull(m[key])
	}
	return cur, nil
}

// setRaw returns doc with the value at path replaced by val, creating
// missing or null parents. Every other member is kept as it was.
func setRaw(doc []byte, path []string, val []byte) ([]byte, error) {
	if len(path) == 0 {
		return val, nil
	}
	m := map[string]json.RawMessage{}
	if nonNull(doc) != nil {
		if err := json.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("not a JSON object: %w", err)
		}
	}
	child, err := setRaw(m[path[0]], path[1:], val)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path[0], err)
	}
	m[path[0]] = child
	return json.Marshal(m)
}

// dotted joins a path as a field path: spec.template. The root is ".".
func dotted(path []string) string {
	if len(path) == 0 {
		return "."
	}
	return strings.Join(path, ".")
}
