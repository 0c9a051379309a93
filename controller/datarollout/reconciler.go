package datarollout

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	shared "github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/spec"
)

func podReady(p *corev1.Pod) bool { return shared.PodReady(p) }

// staleRetry is how soon a line is looked at again when the state cache has
// not yet seen the controller's own last write; after staleLimit the cache
// is trusted again (someone may have deleted what we wrote).
const (
	staleRetry = 250 * time.Millisecond
	staleLimit = 30 * time.Second
)

// Reconcile decides for one line (the request names its state ConfigMap)
// and acts on the decision.
func (c *Controller) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	cm, err := c.readState(ctx, req.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	line, ok := c.lineOf(req.Name, cm)
	if !ok {
		return ctrl.Result{}, nil
	}
	log := c.log.WithValues("line", line.String())
	if c.stale(req.Name, cm) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	in := Input{Now: c.clock.Now(), Line: line, ProgressDeadline: c.deadline}
	if cm != nil {
		if data, ok := cm.Data[KeyState]; ok {
			st, err := ParseState(data, line)
			if err != nil {
				// Never overwrite a state we cannot read: an operator
				// must fix (or delete) it.
				log.Error(err, "the state ConfigMap is invalid; the line is frozen until it is fixed", "configMap", cm.Name)
				return ctrl.Result{RequeueAfter: c.poll}, nil
			}
			in.State, in.Persisted = st, true
		}
		in.Control, err = ParseControl(cm.Data)
		if err != nil {
			log.Error(err, "the state ConfigMap's operator keys are invalid; holding the line as if paused", "configMap", cm.Name)
			in.Control = Control{Paused: true}
		}
	}
	slots, err := c.gather(ctx, line)
	if err != nil {
		return ctrl.Result{}, err
	}
	if c.podsLag(req.Name, slots) {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	in.Slots = slots
	if len(slots) == 0 && in.State.Rollout == nil {
		c.forget(req.Name, cm)
		return ctrl.Result{}, nil
	}
	in.Catalog = c.catalog(ctx, line)
	d := Decide(in)
	if d.Stalled != "" {
		log.Info("rollout held", "why", d.Stalled)
	}
	return c.act(ctx, line, cm, in, d)
}

// readState reads a line's ConfigMap from the state cache; nil when none.
func (c *Controller) readState(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := c.states.Get(ctx, types.NamespacedName{Namespace: c.stateNS, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read data rollout state %s: %w", name, err)
	}
	return cm, nil
}

// lineOf finds which line a state ConfigMap name stands for: from the
// pods seen, else from the ConfigMap itself.
func (c *Controller) lineOf(name string, cm *corev1.ConfigMap) (Line, bool) {
	c.mu.Lock()
	l, ok := c.lines[name]
	c.mu.Unlock()
	if ok || cm == nil {
		return l, ok
	}
	var st struct{ Line }
	if json.Unmarshal([]byte(cm.Data[KeyState]), &st) != nil || st.Line.Name() != name {
		return Line{}, false
	}
	c.remember(st.Line)
	return st.Line, true
}

// stale reports whether the cache still shows the ConfigMap version our
// last write replaced.
func (c *Controller) stale(name string, cm *corev1.ConfigMap) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	mark, ok := c.written[name]
	if !ok {
		return false
	}
	rv := ""
	if cm != nil {
		rv = cm.ResourceVersion
	}
	if rv == mark.replaced && c.clock.Since(mark.at) < staleLimit {
		return true
	}
	delete(c.written, name)
	return false
}

func (c *Controller) forget(name string, cm *corev1.ConfigMap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cm == nil {
		delete(c.lines, name)
	}
}

// gather lists the line's pods from the cache and turns each of their data
// deployments fed from the line's source and repository into a slot.
func (c *Controller) gather(ctx context.Context, line Line) ([]Slot, error) {
	var pods corev1.PodList
	if err := c.client.List(ctx, &pods, client.InNamespace(line.Namespace), client.MatchingFields{SourceIndex: line.Source}); err != nil {
		return nil, fmt.Errorf("list pods of source %s in %s: %w", line.Source, line.Namespace, err)
	}
	ns, err := c.namespace(ctx, line.Namespace)
	if err != nil {
		return nil, err
	}
	var slots []Slot
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		parsed, _ := spec.ParsePod(ns, pod.Annotations)
		if parsed.Store.URL != line.StoreURL {
			continue
		}
		rollout, _ := spec.ParseRollout(pod.Annotations)
		errSince, _ := spec.ErrorSince(pod.Annotations)
		for _, dep := range parsed.Deployments {
			if dep.Source != line.Source {
				continue
			}
			slots = append(slots, Slot{
				Pod:         client.ObjectKeyFromObject(pod),
				UID:         pod.UID,
				Created:     pod.CreationTimestamp.Time,
				Group:       GroupOf(shared.ControllerOf(pod), dep.Name),
				Rollout:     rollout,
				Request:     pod.Annotations[spec.PrefixDataRequest+dep.Name],
				Status:      pod.Annotations[spec.PrefixDataStatus+dep.Name],
				Health:      pod.Labels[spec.LabelHealth],
				ErrorSince:  errSince,
				Ready:       podReady(pod),
				Terminating: pod.DeletionTimestamp != nil,
			})
		}
	}
	return slots, nil
}

// namespace reads a namespace's labels and annotations (the store URL's
// default) from the manager's metadata cache.
func (c *Controller) namespace(ctx context.Context, name string) (spec.Namespace, error) {
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.client.Get(ctx, types.NamespacedName{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return spec.Namespace{Name: name}, nil
		}
		return spec.Namespace{}, fmt.Errorf("read namespace %s: %w", name, err)
	}
	return spec.Namespace{Name: name, Labels: obj.Labels, Annotations: obj.Annotations}, nil
}

// catalog asks the repository for the line's versions; an error makes the
// line's repository unreachable for this decision.
func (c *Controller) catalog(ctx context.Context, line Line) Catalog {
	cat, err := c.repo.Source(ctx, line.StoreURL, line.Source)
	if err != nil {
		c.metrics.RepositoryRequests.WithLabelValues("source", "error").Inc()
		c.log.V(1).Info("data repository not reachable", "line", line.String(), "error", err.Error())
		return Catalog{}
	}
	c.metrics.RepositoryRequests.WithLabelValues("source", "ok").Inc()
	return cat
}

// linesOfPod maps a pod to the lines of its data deployments.
func (c *Controller) linesOfPod(ctx context.Context, obj client.Object) []reconcile.Request {
	ns, err := c.namespace(ctx, obj.GetNamespace())
	if err != nil {
		c.log.Error(err, "cannot map a pod to its data lines", "pod", client.ObjectKeyFromObject(obj))
		return nil
	}
	parsed, _ := spec.ParsePod(ns, obj.GetAnnotations())
	if parsed.Store.URL == "" {
		return nil
	}
	var out []reconcile.Request
	for _, d := range parsed.Deployments {
		key := c.remember(Line{Namespace: obj.GetNamespace(), StoreURL: parsed.Store.URL, Source: d.Source})
		if !slices.Contains(out, reconcile.Request{NamespacedName: key}) {
			out = append(out, reconcile.Request{NamespacedName: key})
		}
	}
	return out
}

// next is when to decide again: at the decision's deadline, and at the
// latest after the poll interval (with up to 10% jitter, so lines spread).
func (c *Controller) next(d Decision) time.Duration {
	poll := c.poll + rand.N(c.poll/10+1)
	if d.RequeueAfter > 0 && d.RequeueAfter < poll {
		return d.RequeueAfter
	}
	return poll
}
