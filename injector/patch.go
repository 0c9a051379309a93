package injector

import (
	"encoding/json"
	"fmt"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
)

// Patch returns the JSON patch that turns original into mutated. Both are
// marshalled from the same Go types, so fields that k8s.io/api does not know
// appear in neither and are never touched when the patch is applied to the
// raw object; and because Inject only replaces its own entries in place or
// appends, no array index of a user's entry moves.
func Patch(original, mutated *corev1.Pod) ([]jsonpatch.Operation, error) {
	a, err := json.Marshal(original)
	if err != nil {
		return nil, fmt.Errorf("marshal original pod: %w", err)
	}
	b, err := json.Marshal(mutated)
	if err != nil {
		return nil, fmt.Errorf("marshal mutated pod: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		return nil, fmt.Errorf("diff pods: %w", err)
	}
	return ops, nil
}
