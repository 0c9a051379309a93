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
// to its annotations and listed in its autocrane.io/injected record (which
// is how the ownership policy and checkInitialRequests tell them from a
// forgery), or pod itself when nothing is to add.
func withInitialRequests(pod *corev1.Pod, reqs map[string]string) *corev1.Pod {
	var missing []string
	for _, k := range slices.Sorted(maps.Keys(reqs)) {
		if _, ok := pod.Annotations[k]; !ok {
			missing = append(missing, k)
		}
	}
	rec, err := spec.ParseInjected(pod.Annotations[spec.AnnotationInjected])
	if len(missing) == 0 || err != nil || rec.Version == 0 {
		return pod
	}
	out := pod.DeepCopy()
	for _, k := range missing {
		out.Annotations[k] = reqs[k]
	}
	rec.Annotations = append(rec.Annotations, missing...)
	out.Annotations[spec.AnnotationInjected] = rec.String()
	return out
}

// claimedByInjector reports whether the pod's injected record names key, by
// the same test the ownership policy uses: the quoted key appears in it.
func claimedByInjector(pod *corev1.Pod, key string) bool {
	return strings.Contains(pod.Annotations[spec.AnnotationInjected], `"`+key+`"`)
}

// checkInitialRequests rejects, on a pod's creation, a data request that the
// injected record claims but that is not the one AutoCrane gives new pods:
// the ownership policy lets claimed requests through on creation because
// this check (fail closed, like the webhook) stands in for it. Unclaimed
// requests are the policy's to judge, by the requester's rights.
func (b base) checkInitialRequests(ctx context.Context, ns spec.Namespace, pod *corev1.Pod) field.ErrorList {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(pod.Annotations)) {
		if strings.HasPrefix(k, spec.PrefixDataRequest) && claimedByInjector(pod, k) {
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
	const owned = "is AutoCrane's state: on a new pod whose injected record claims it, it may only be the last known good version AutoCrane gives it"
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
