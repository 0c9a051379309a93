package controller

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WorkloadOf is the object a user knows a pod's owner by, for Events: the
// Deployment when the owner is a ReplicaSet that one controls, else the
// owner itself. It reads only the ReplicaSet's metadata; when that read
// fails, the ReplicaSet stands.
func WorkloadOf(ctx context.Context, c client.Reader, namespace string, owner metav1.OwnerReference) *metav1.PartialObjectMetadata {
	ref := OwnerObject(namespace, owner)
	if owner.Kind != "ReplicaSet" || owner.APIVersion != "apps/v1" {
		return ref
	}
	rs := &metav1.PartialObjectMetadata{}
	rs.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"})
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: owner.Name}, rs); err != nil {
		return ref
	}
	if up := metav1.GetControllerOf(rs); up != nil {
		return OwnerObject(namespace, *up)
	}
	return ref
}

// OwnerObject is the object an owner reference names, as metadata an
// Event can be about.
func OwnerObject(namespace string, ref metav1.OwnerReference) *metav1.PartialObjectMetadata {
	o := &metav1.PartialObjectMetadata{}
	o.APIVersion, o.Kind = ref.APIVersion, ref.Kind
	o.Namespace, o.Name, o.UID = namespace, ref.Name, ref.UID
	return o
}
