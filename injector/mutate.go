package injector

import (
	"errors"

	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Outcome is what Mutate did with a pod.
type Outcome string

// The outcomes.
const (
	// Injected: the pod changed.
	Injected Outcome = "injected"
	// Unchanged: the pod is in scope and already holds what it asks for.
	Unchanged Outcome = "unchanged"
	// Skipped: the pod is out of scope, or asks for nothing.
	Skipped Outcome = "skipped"
)

// ReasonNothingToInject is the skip reason of a pod in scope that asks for
// nothing AutoCrane injects.
const ReasonNothingToInject = "nothing-to-inject"

// Result is what Mutate decided.
type Result struct {
	// Pod is the mutated pod; the input pod when nothing changed.
	Pod *corev1.Pod
	// Outcome is what happened.
	Outcome Outcome
	// Reason is a short, fixed word for the outcome (scope reason,
	// nothing-to-inject, injected), safe as a metric label.
	Reason string
}

// Mutate is the whole injection decision for one pod: scope, parsing the
// pod's and its namespace's keys, and Inject. The mutating webhook and the
// offline CLI both call it, so their output is the same. Invalid keys give
// an *InvalidError naming every bad key.
func Mutate(ns spec.Namespace, pod *corev1.Pod, cfg Config) (Result, error) {
	in, reason, ferr := spec.InjectionScope(ns.Labels, pod.Labels, pod.Annotations)
	if ferr != nil {
		return Result{}, &InvalidError{Errs: field.ErrorList{ferr}}
	}
	if !in {
		return Result{Pod: pod, Outcome: Skipped, Reason: string(reason)}, nil
	}
	want, errs := spec.ParsePod(ns, pod.Annotations)
	if len(errs) > 0 {
		return Result{}, &InvalidError{Errs: spec.LimitErrors(errs)}
	}
	out, err := Inject(pod, want, cfg)
	if err != nil {
		var inv *InvalidError
		if errors.As(err, &inv) {
			spec.SortErrors(inv.Errs)
			inv.Errs = spec.LimitErrors(inv.Errs)
		}
		return Result{}, err
	}
	if equality.Semantic.DeepEqual(pod, out) {
		if _, had := pod.Annotations[spec.AnnotationInjected]; !had {
			return Result{Pod: pod, Outcome: Skipped, Reason: ReasonNothingToInject}, nil
		}
		return Result{Pod: pod, Outcome: Unchanged, Reason: string(Unchanged)}, nil
	}
	return Result{Pod: out, Outcome: Injected, Reason: string(Injected)}, nil
}
