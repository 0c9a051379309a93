package spec

import "k8s.io/apimachinery/pkg/util/validation/field"

// ScopeReason says why a pod is or is not injected. The values are a small
// fixed set, safe to use as metric labels.
type ScopeReason string

// The scope reasons.
const (
	ScopePodEnabled        ScopeReason = "pod-enabled"
	ScopePodDisabled       ScopeReason = "pod-disabled"
	ScopeNamespaceEnabled  ScopeReason = "namespace-enabled"
	ScopeNamespaceDisabled ScopeReason = "namespace-disabled"
	ScopeAnnotated         ScopeReason = "annotated"
	ScopeNotOptedIn        ScopeReason = "not-opted-in"
)

var podLabelPath = field.NewPath("metadata", "labels").Key(LabelInject)

// InjectionScope decides whether a pod is in AutoCrane's injection scope.
// Precedence: the pod's autocrane.io/inject label, then a namespace labelled
// disabled, then a namespace labelled enabled or any AutoCrane annotation on
// the pod. A pod label other than enabled or disabled is an error.
func InjectionScope(namespaceLabels, podLabels, podAnnotations map[string]string) (bool, ScopeReason, *field.Error) {
	if v, ok := podLabels[LabelInject]; ok {
		switch v {
		case InjectEnabled:
			return true, ScopePodEnabled, nil
		case InjectDisabled:
			return false, ScopePodDisabled, nil
		default:
			return false, "", field.NotSupported(podLabelPath, shown(v), []string{InjectEnabled, InjectDisabled})
		}
	}
	switch namespaceLabels[LabelInject] {
	case InjectDisabled:
		return false, ScopeNamespaceDisabled, nil
	case InjectEnabled:
		return true, ScopeNamespaceEnabled, nil
	}
	if HasAutoCraneKey(podAnnotations) {
		return true, ScopeAnnotated, nil
	}
	return false, ScopeNotOptedIn, nil
}

// SystemNamespaces returns the namespaces AutoCrane never injects, whatever
// their labels say. AutoCrane's own namespace is excluded too; the manager
// knows it from its flags.
func SystemNamespaces() []string {
	return []string{"kube-system", "kube-public", "kube-node-lease"}
}
