package webhook

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
)

// readNamespace reads a namespace's labels and annotations, as metadata
// only, from the cache. A namespace missing from the cache is read once
// from live, when a live reader is given: `kubectl apply` of a namespace
// and a pod together can reach admission before the informer has seen the
// namespace.
func readNamespace(ctx context.Context, cached, live client.Reader, name string) (spec.Namespace, error) {
	if name == "" {
		return spec.Namespace{}, errors.New("AutoCrane could not read the object's namespace: the request names none")
	}
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(namespaceGVK)
	err := cached.Get(ctx, client.ObjectKey{Name: name}, obj)
	if apierrors.IsNotFound(err) && live != nil {
		err = live.Get(ctx, client.ObjectKey{Name: name}, obj)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return spec.Namespace{}, fmt.Errorf("AutoCrane could not read namespace %q: not found (if it was just created, AutoCrane has not seen it yet; retry): %w", name, err)
		}
		return spec.Namespace{}, fmt.Errorf("AutoCrane could not read namespace %q: %w", name, err)
	}
	return spec.Namespace{Name: name, Labels: obj.Labels, Annotations: obj.Annotations}, nil
}
