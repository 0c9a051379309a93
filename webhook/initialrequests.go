package webhook

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/autocrane/autocrane/spec"
)

// InitialRequester gives the data versions a new pod starts on: the last
// known good version of each of its data deployments, from the data
// rollout controller's cache. The controller/datarollout Controller is one.
type InitialRequester interface {
	InitialRequests(ctx context.Context, namespace string, pod spec.Pod) (map[string]spec.DataRequest, error)
}

// initialRequests are the request.data.autocrane.io/NAME annotations a new
// pod starts with, by key: one per data deployment with a last known good
// version. An error reading the cache gives none: the pod is admitted and
// the data rollout controller writes its requests a moment later.
func (b base) initialRequests(ctx context.Context, ns spec.Namespace, pod *corev1.Pod) (map[string]string, error) {
	if b.requests == nil {
		return nil, nil
	}
	parsed, errs := spec.ParsePod(ns, pod.Annotations)
	if len(errs) > 0 || len(parsed.Deployments) == 0 {
		return nil, nil
	}
	reqs, err := b.requests.InitialRequests(ctx, ns.Name, parsed)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, r := range reqs {
		out[spec.PrefixDataRequest+name] = r.String()
	}
	return out, nil
}

// withInitialRequests returns pod with the initial requests it lacks added
// to its annotations, or pod itself when nothing is to add.
func withInitialRequests(pod *corev1.Pod, reqs map[string]string) *corev1.Pod {
	var missing []string
	for k := range reqs {
		if _, ok := pod.Annotations[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return pod
	}
	out := pod.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	for _, k := range missing {
		out.Annotations[k] = reqs[k]
	}
	return out
}

// checkInitialRequests rejects, on a pod's creation, a data request that is
// not the one AutoCrane gives new pods: the ownership policy lets
// request.data.autocrane.io/* through on creation because this check (fail
// closed, like the webhook) stands in for it.
func (b base) checkInitialRequests(ctx context.Context, ns spec.Namespace, pod *corev1.Pod) field.ErrorList {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(pod.Annotations)) {
		if strings.HasPrefix(k, spec.PrefixDataRequest) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	want, err := b.initialRequests(ctx, ns, pod)
	if err != nil {
		return field.ErrorList{field.InternalError(spec.AnnotationPath(keys[0]), fmt.Errorf("AutoCrane could not read the data versions new pods start on: %w", err))}
	}
	const owned = "is AutoCrane's state: on a new pod it may only be the last known good version AutoCrane gives it"
	var errs field.ErrorList
	for _, k := range keys {
		switch w, ok := want[k]; {
		case !ok:
			errs = append(errs, field.Forbidden(spec.AnnotationPath(k), owned+" (there is none for this data deployment); remove it"))
		case pod.Annotations[k] != w:
			errs = append(errs, field.Forbidden(spec.AnnotationPath(k), owned+fmt.Sprintf(" (%s)", w)))
		}
	}
	return errs
}
