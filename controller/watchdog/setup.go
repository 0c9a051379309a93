package watchdog

import (
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/autocrane/autocrane/spec"
)

// Options configure the prober. Zero values mean the defaults.
type Options struct {
	// Workers is how many probes run at once; 0: 32.
	Workers int
	// MaxConcurrentReconciles; 0: 4.
	MaxConcurrentReconciles int
	// Dial is a seam for tests; nil dials TCP.
	Dial DialFunc
	// Registerer receives the metrics; required.
	Registerer prometheus.Registerer
	// SkipNameValidation allows a second controller of the same name in
	// one process (tests that restart the manager).
	SkipNameValidation bool
	Clock              clock.WithTicker
	Log                logr.Logger
}

// Setup adds the prober (its scheduler and its pod controller) to mgr. Both
// run only on the leader.
func Setup(mgr ctrl.Manager, opts Options) (*Reconciler, error) {
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	r := &Reconciler{
		Client:   mgr.GetClient(),
		Recorder: mgr.GetEventRecorder("autocrane-prober"),
		Clock:    clk,
		Log:      opts.Log.WithName("prober"),
		Changed:  make(chan event.GenericEvent, 1024),
	}
	r.Scheduler = &Scheduler{Workers: opts.Workers, Run: r.Observe, Clock: clk}
	r.Prober = NewProber(r, ProberOptions{Dial: opts.Dial, Clock: clk})
	m, err := NewMetrics(opts.Registerer, func() float64 { return float64(r.Scheduler.Len()) })
	if err != nil {
		return nil, err
	}
	r.Metrics = m
	if err := mgr.Add(r.Scheduler); err != nil {
		return nil, fmt.Errorf("add probe scheduler: %w", err)
	}
	workers := opts.MaxConcurrentReconciles
	if workers == 0 {
		workers = 4
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("watchdog-prober").
		For(&corev1.Pod{}, builder.WithPredicates(predicate.NewPredicateFuncs(Watched))).
		WatchesRawSource(source.Channel(r.Changed, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, SkipNameValidation: &opts.SkipNameValidation}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("add prober controller: %w", err)
	}
	return r, nil
}

// Watched reports whether the prober cares about a pod: it declares a
// watchdog, or carries a status key or the health label to keep or clean.
func Watched(obj client.Object) bool {
	if _, ok := obj.GetLabels()[spec.LabelHealth]; ok {
		return true
	}
	for k := range obj.GetAnnotations() {
		if strings.HasPrefix(k, spec.PrefixProbe) || strings.HasPrefix(k, spec.PrefixWatchdogStatus) {
			return true
		}
	}
	return false
}
