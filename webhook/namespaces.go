package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// Options configure AutoCrane's admission handlers, the PodMutator and the
// Validator alike.
type Options struct {
	// Namespaces reads the namespace of each object, for its labels and
	// annotations. Required. Pass the manager's cache-backed reader
	// (mgr.GetCache() or mgr.GetClient()): namespaces are read as
	// metav1.PartialObjectMetadata with GVK v1/Namespace, so the cache holds
	// their metadata only and a request makes no API call. The first read
	// starts the metadata informer; the manager should start it before
	// serving (cache.GetInformer on the same PartialObjectMetadata), so the
	// first admission does not wait for a sync. RBAC: get, list and watch
	// namespaces.
	Namespaces client.Reader
	// LiveNamespaces, when set, reads a namespace the cache has not seen
	// yet (one GET, only then): `kubectl apply` of a new namespace and a
	// pod together can reach admission before the informer has it. Pass
	// the manager's API reader. Nil: a cache miss is an error.
	LiveNamespaces client.Reader
	// Config is how pods are injected. Required; it must pass
	// Config.Validate. Start from injector.DefaultConfig. The handlers keep
	// a copy, so later changes to the caller's value have no effect.
	Config injector.Config
	// ExcludedNamespaces are never handled, whatever their labels say: a
	// defence in depth behind the webhook configurations'
	// namespaceSelector. Empty means spec.SystemNamespaces() (kube-system,
	// kube-public, kube-node-lease). A non-empty list replaces the
	// defaults, so the manager passes append(spec.SystemNamespaces(), its
	// own namespace).
	ExcludedNamespaces []string
	// Registerer is where the handler's metrics are registered, normally
	// controller-runtime's metrics.Registry. Nil means the metrics are kept
	// but not registered.
	Registerer prometheus.Registerer
	// InitialRequests gives new pods the last known good version of each
	// data deployment at admission, so their init container never waits for
	// the controller. Nil: pods get their requests from the controller.
	InitialRequests InitialRequester
}

// PodMutatorOptions and ValidatorOptions are the shared Options.
type (
	PodMutatorOptions = Options
	ValidatorOptions  = Options
)

// base is what every handler holds: how to read namespaces, the injector
// config, and the excluded namespaces.
type base struct {
	namespaces     client.Reader
	liveNamespaces client.Reader
	cfg            injector.Config
	excluded       []string
	requests       InitialRequester
}

// newBase checks opts; who names the handler in errors.
func newBase(who string, opts Options) (base, error) {
	if opts.Namespaces == nil {
		return base{}, fmt.Errorf("%s: Namespaces reader is required", who)
	}
	if err := opts.Config.Validate(); err != nil {
		return base{}, fmt.Errorf("%s: invalid injector config: %w", who, err)
	}
	excluded := opts.ExcludedNamespaces
	if len(excluded) == 0 {
		excluded = spec.SystemNamespaces()
	}
	return base{
		namespaces:     opts.Namespaces,
		liveNamespaces: opts.LiveNamespaces,
		cfg:            copyConfig(opts.Config),
		excluded:       slices.Clone(excluded),
		requests:       opts.InitialRequests,
	}, nil
}

func (b base) isExcluded(ns string) bool { return slices.Contains(b.excluded, ns) }

func (b base) namespace(ctx context.Context, name string) (spec.Namespace, error) {
	return readNamespace(ctx, b.namespaces, b.liveNamespaces, name)
}

// copyConfig copies the only reference-typed field of the Config.
func copyConfig(c injector.Config) injector.Config {
	if c.Resources != nil {
		res := make(map[spec.Component]corev1.ResourceRequirements, len(c.Resources))
		for k, v := range c.Resources {
			res[k] = *v.DeepCopy()
		}
		c.Resources = res
	}
	return c
}

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
