package eviction

import (
	"fmt"

	"github.com/autocrane/autocrane/spec"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Options configure the eviction controller.
type Options struct {
	// StormShare: evict none of an owner's pods when more than this share
	// of them (and at least two) are in error. 0: 0.5.
	StormShare float64
	// RatePerMinute caps evictions across the cluster; 0: 30.
	RatePerMinute float64
	// Burst of the rate limit; 0: 5.
	Burst int
	// DryRun logs and records Events without evicting.
	DryRun     bool
	Registerer prometheus.Registerer
	// SkipNameValidation allows a second controller of the same name in
	// one process (tests that restart the manager).
	SkipNameValidation bool
	Clock              clock.PassiveClock
	Log                logr.Logger
}

// Setup adds the eviction controller to mgr; it runs on the leader only.
// The manager's pod cache must have the controller.OwnerIndex index.
func Setup(mgr ctrl.Manager, opts Options) (*Reconciler, error) {
	if opts.StormShare == 0 {
		opts.StormShare = 0.5
	}
	if opts.StormShare < 0 || opts.StormShare > 1 {
		return nil, fmt.Errorf("eviction storm share %v: must be between 0 and 1", opts.StormShare)
	}
	if opts.RatePerMinute == 0 {
		opts.RatePerMinute = 30
	}
	if opts.Burst == 0 {
		opts.Burst = 5
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	m, err := NewMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Reconciler{
		Client:     mgr.GetClient(),
		Recorder:   mgr.GetEventRecorder("autocrane-eviction"),
		Metrics:    m,
		Clock:      opts.Clock,
		Log:        opts.Log.WithName("eviction"),
		StormShare: opts.StormShare,
		Limiter:    rate.NewLimiter(rate.Limit(opts.RatePerMinute/60), opts.Burst),
		DryRun:     opts.DryRun,
		backoff:    map[types.UID]backoff{},
		stopped:    map[types.UID]bool{},
		noted:      map[types.UID]Reason{},
		evicted:    map[types.NamespacedName]types.UID{},
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("watchdog-eviction").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(e event.CreateEvent) bool { return inError(e.Object) },
			UpdateFunc:  func(e event.UpdateEvent) bool { return inError(e.ObjectOld) || inError(e.ObjectNew) },
			DeleteFunc:  func(e event.DeleteEvent) bool { r.forget(e.Object.GetUID()); return false },
			GenericFunc: func(e event.GenericEvent) bool { return inError(e.Object) },
		})).
		WithOptions(ctrlcontroller.Options{SkipNameValidation: &opts.SkipNameValidation}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("add eviction controller: %w", err)
	}
	return r, nil
}

// inError passes pods whose health label is error, and the update that
// clears it (the old object matched), so brakes and backoffs are forgotten.
func inError(obj client.Object) bool {
	return obj.GetLabels()[spec.LabelHealth] == string(spec.LevelError)
}
