package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// checkUnknownKept returns an error naming every field that k8s.io/api does
// not know which before has and after lost or changed.
//
// The webhook's patch is computed between typed pods, which cannot see such
// fields, and gomodules.xyz/jsonpatch diffs lists index by index. When the
// injector removes one of its entries from the middle of a list, the entries
// after it move up, and the patch rewrites each one's known fields in place:
// an unknown field stays at the old index, on the wrong entry, or goes with
// the last one. Entries of name-keyed lists are matched by name here, so such
// a move shows as a loss.
func checkUnknownKept(before, after []byte) error {
	u0, err := unknownFields(before)
	if err != nil {
		return err
	}
	u1, err := unknownFields(after)
	if err != nil {
		return err
	}
	var lost []string
	for p, v := range u0 {
		if u1[p] != v {
			lost = append(lost, p)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	slices.Sort(lost)
	return fmt.Errorf("injecting would lose or move fields that AutoCrane's Kubernetes types do not know: %s "+
		"(a known limit of the injector's patch when it removes an entry it had injected before; "+
		"remove what the %s annotation lists, and that annotation, then inject again)",
		strings.Join(lost, ", "), "autocrane.io/injected")
}

// unknownFields maps the path of every member of raw that a round trip
// through corev1.Pod drops to that member's JSON. Elements of lists are
// named name=NAME when they have a name, else by index. Zero values (null,
// "", 0, false, {}, []) are left out: a typed pod omits them too, and a patch
// may fill them.
func unknownFields(raw []byte) (map[string]string, error) {
	var pod corev1.Pod
	if err := utiljson.Unmarshal(raw, &pod); err != nil {
		return nil, fmt.Errorf("decode pod: %w", err)
	}
	known, err := json.Marshal(&pod)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	var r, k any
	if err := decodeNumbers(raw, &r); err != nil {
		return nil, err
	}
	if err := decodeNumbers(known, &k); err != nil {
		return nil, err
	}
	out := map[string]string{}
	walkUnknown(r, k, "", out)
	return out, nil
}

func walkUnknown(r, k any, path string, out map[string]string) {
	switch rv := r.(type) {
	case map[string]any:
		kv, _ := k.(map[string]any)
		for key, v := range rv {
			p := path + "/" + key
			kval, ok := kv[key]
			if !ok {
				if !isZeroJSON(v) {
					b, _ := json.Marshal(v)
					out[p] = string(b)
				}
				continue
			}
			walkUnknown(v, kval, p, out)
		}
	case []any:
		kv, _ := k.([]any)
		for i, v := range rv {
			var kval any
			if i < len(kv) {
				kval = kv[i]
			}
			walkUnknown(v, kval, path+"/"+elementKey(v, i), out)
		}
	}
}

func elementKey(v any, i int) string {
	if m, ok := v.(map[string]any); ok {
		if name, ok := m["name"].(string); ok {
			return "name=" + name
		}
	}
	return strconv.Itoa(i)
}

func isZeroJSON(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case map[string]any, []any:
		return reflect.ValueOf(x).Len() == 0
	}
	return false
}

func decodeNumbers(b []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
