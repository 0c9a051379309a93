package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// LabelRole marks a pod's role for AutoCrane. Only the data repository's
// pods (RoleDataRepository) may declare sources.
const (
	LabelRole          = "autocrane.io/role"
	RoleDataRepository = "datarepository"
)

// PodFields is what validation reads of a pod or a pod template.
type PodFields struct {
	Labels      map[string]string
	Annotations map[string]string
	Spec        *corev1.PodSpec
}

// ValidatePod checks every AutoCrane key of a pod (or pod template) in its
// namespace: the keys the injector reads, probes, the role label, and how
// they fit the pod spec. It returns the errors sorted by path (at most
// MaxErrors, then one that counts the rest), and warnings for unknown keys
// in AutoCrane's domain. Paths are relative to the
// pod; Reroot moves them under a template's path.
func ValidatePod(ns Namespace, pod PodFields) (warnings []string, errs field.ErrorList) {
	if _, _, err := InjectionScope(nil, pod.Labels, nil); err != nil {
		errs = append(errs, err)
	}
	parsed, pErrs := ParsePod(ns, pod.Annotations)
	errs = append(errs, pErrs...)
	probes, prErrs := ParseProbes(pod.Annotations)
	errs = append(errs, prErrs...)

	_, wErrs := ParseWatchdog(pod.Annotations)
	errs = append(errs, wErrs...)
	_, rErrs := ParseRollout(pod.Annotations)
	errs = append(errs, rErrs...)

	isRepo := false
	if role, ok := pod.Labels[LabelRole]; ok {
		if role != RoleDataRepository {
			errs = append(errs, field.NotSupported(field.NewPath("metadata", "labels").Key(LabelRole), shown(role), []string{RoleDataRepository}))
		}
		isRepo = role == RoleDataRepository
	}
	if len(parsed.Sources) > 0 && !isRepo {
		errs = append(errs, field.Forbidden(AnnotationPath(PrefixData+parsed.Sources[0].Name),
			fmt.Sprintf("a source declaration (KIND:LOCATION) is only valid on the data repository's pods (label %s=%s); on an app pod, name a source instead", LabelRole, RoleDataRepository)))
	}
	if len(parsed.Deployments) > 0 && isRepo {
		errs = append(errs, field.Forbidden(AnnotationPath(PrefixData+parsed.Deployments[0].Name),
			"the data repository's pods declare sources (KIND:LOCATION), not data deployments"))
	}
	if pod.Spec != nil {
		if pod.Spec.HostNetwork && len(probes) > 0 {
			errs = append(errs, field.Forbidden(AnnotationPath(PrefixProbe+probes[0].Name),
				"watchdog probes are not allowed on hostNetwork pods, whose IP is the node's"))
		}
		if len(parsed.Deployments) > 0 && len(pErrs) == 0 {
			injected, _ := ParseInjected(pod.Annotations[AnnotationInjected])
			ours, ourMounts := NameSet(injected.Containers), NameSet(injected.Mounts)
			apps := slices.DeleteFunc(slices.Clone(pod.Spec.Containers), func(c corev1.Container) bool { return ours[c.Name] })
			skip := func(m corev1.VolumeMount) bool { return ourMounts[m.Name] }
			errs = append(errs, ValidateLocationAgainstMounts(parsed.Store.Location, parsed.LocationPath, apps, skip)...)
		}
	}
	SortErrors(errs)
	return UnknownKeyWarnings(pod.Annotations, pod.Labels), LimitErrors(dedupe(errs))
}

// NameSet is a set of names, for membership tests on lists of any size
// (a user-supplied list can hold thousands).
func NameSet(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	return set
}

// Reroot moves pod-relative error paths under root (for example
// spec.template of a Deployment). Paths into the namespace stay as they are.
func Reroot(errs field.ErrorList, root *field.Path) field.ErrorList {
	if root == nil {
		return errs
	}
	out := make(field.ErrorList, 0, len(errs))
	for _, e := range errs {
		c := *e
		if !strings.HasPrefix(c.Field, "namespace[") {
			c.Field = root.String() + "." + c.Field
		}
		out = append(out, &c)
	}
	return out
}

func dedupe(errs field.ErrorList) field.ErrorList {
	seen := map[string]bool{}
	out := errs[:0]
	for _, e := range errs {
		if s := e.Error(); !seen[s] {
			seen[s] = true
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// UnknownKeyWarnings warns about each annotation or label in AutoCrane's
// domain that no part of AutoCrane reads, naming the closest known key: a
// typo would otherwise be silently ignored.
func UnknownKeyWarnings(annotations, labels map[string]string) []string {
	type unknown struct {
		kind, key string
		label     bool
	}
	var found []unknown
	for _, group := range []struct {
		kind  string
		m     map[string]string
		label bool
	}{{"annotation", annotations, false}, {"label", labels, true}} {
		for _, key := range slices.Sorted(maps.Keys(group.m)) {
			if IsAutoCraneKey(key) && !knownKey(key, group.label) {
				found = append(found, unknown{group.kind, key, group.label})
			}
		}
	}
	var out []string
	// Suggestions cost an edit distance per known key: only for the
	// warnings shown.
	for i, u := range found {
		if i == MaxErrors {
			out = append(out, fmt.Sprintf("and %d more unknown AutoCrane keys", len(found)-MaxErrors))
			break
		}
		msg := fmt.Sprintf("%s %s is not an AutoCrane key and is ignored", u.kind, shown(u.key))
		if s := closestKey(u.key, u.label); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", s)
		}
		out = append(out, msg)
	}
	return out
}

func knownKey(key string, label bool) bool {
	for _, k := range KnownKeys {
		if k.Label != label {
			continue
		}
		if k.Key == key || (k.Prefix && strings.HasPrefix(key, k.Key) && len(key) > len(k.Key)) {
			return true
		}
	}
	return false
}

// closestKey is the known key nearest to key by edit distance, or "" when
// none is close. For prefix keys the user's name is kept:
// prob.autocrane.io/web suggests probe.autocrane.io/web.
func closestKey(key string, label bool) string {
	// No valid key is longer (253-byte prefix, 63-byte name), and edit
	// distance is quadratic: a huge key gets no suggestion.
	if len(key) > maxKeyLength {
		return ""
	}
	_, name, _ := strings.Cut(key, "/")
	// Suggest only near misses: at most two edits, a few more on long keys.
	best, bestDist := "", max(3, len(key)/8+1)
	for _, k := range KnownKeys {
		if k.Label != label {
			continue
		}
		cand := k.Key
		if k.Prefix {
			cand += name
		}
		if d := editDistance(key, cand); d < bestDist {
			best, bestDist = cand, d
		}
	}
	return best
}

// maxKeyLength is the longest valid label or annotation key.
const maxKeyLength = 253 + 1 + 63

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
