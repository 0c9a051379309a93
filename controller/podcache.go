package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
)

// TrimPod is the pod cache's transform: it keeps only what AutoCrane's
// controllers read (identity, owners, AutoCrane's labels and annotations,
// host networking, phase, IPs and the Ready condition), so the cache of
// every pod in the cluster stays small. Writers must patch single keys,
// never update a cached pod.
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		// Tombstones and other types pass through.
		return obj, nil
	}
	trimmed := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:              pod.Name,
			Namespace:         pod.Namespace,
			UID:               pod.UID,
			ResourceVersion:   pod.ResourceVersion,
			CreationTimestamp: pod.CreationTimestamp,
			DeletionTimestamp: pod.DeletionTimestamp,
			OwnerReferences:   pod.OwnerReferences,
			Labels:            autoCraneKeys(pod.Labels),
			Annotations:       autoCraneKeys(pod.Annotations),
		},
		Spec: corev1.PodSpec{HostNetwork: pod.Spec.HostNetwork, NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{
			Phase:  pod.Status.Phase,
			PodIP:  pod.Status.PodIP,
			PodIPs: pod.Status.PodIPs,
		},
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			trimmed.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	return trimmed, nil
}

func autoCraneKeys(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if spec.IsAutoCraneKey(k) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// PodReady reports whether a (trimmed) pod is Ready.
func PodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ControllerOf is the pod's controlling owner, or nil.
func ControllerOf(pod *corev1.Pod) *metav1.OwnerReference { return metav1.GetControllerOf(pod) }

// OwnerIndex is the pod cache index of controller owner UIDs.
const OwnerIndex = "autocrane.io/owner-uid"

// IndexOwner indexes a pod by its controller owner's UID; use it with the
// cache's IndexField and OwnerIndex.
func IndexOwner(obj client.Object) []string {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	if ref := ControllerOf(pod); ref != nil {
		return []string{string(ref.UID)}
	}
	return nil
}
