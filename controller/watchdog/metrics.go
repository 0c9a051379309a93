package watchdog

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autocrane/autocrane/spec"
)

// Metrics are the prober's Prometheus metrics. Every label has a fixed,
// small set of values.
type Metrics struct {
	Probes      *prometheus.CounterVec
	Duration    prometheus.Histogram
	Transitions *prometheus.CounterVec
	Writes      *prometheus.CounterVec
	Targets     prometheus.GaugeFunc
	Health      *prometheus.GaugeVec
}

// NewMetrics registers the prober's metrics with reg. targets reports the
// number of scheduled watchdogs at scrape time.
func NewMetrics(reg prometheus.Registerer, targets func() float64) (*Metrics, error) {
	m := &Metrics{
		Probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_watchdog_probes_total",
			Help: "Watchdog probes by result: info, warning, failure, or skipped (the pod's IP changed or it is gone).",
		}, []string{"result"}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autocrane_watchdog_probe_duration_seconds",
			Help:    "Time from the start of a probe to its result.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_watchdog_transitions_total",
			Help: "Watchdog level changes, by the level entered.",
		}, []string{"to"}),
		Writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_watchdog_writes_total",
			Help: "Patches of pod status keys and health labels, by result.",
		}, []string{"result"}),
		Targets: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "autocrane_watchdog_targets",
			Help: "Watchdogs being probed.",
		}, targets),
		Health: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autocrane_pods_by_health",
			Help: "Watched pods by the value of their status.autocrane.io/health label.",
		}, []string{"health"}),
	}
	for _, c := range []prometheus.Collector{m.Probes, m.Duration, m.Transitions, m.Writes, m.Targets, m.Health} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("register prober metrics: %w (one prober per registry)", err)
			}
			return nil, fmt.Errorf("register prober metrics: %w", err)
		}
	}
	for _, r := range []string{"info", "warning", "failure", "skipped"} {
		m.Probes.WithLabelValues(r)
	}
	for _, l := range spec.Levels {
		m.Transitions.WithLabelValues(string(l))
		m.Health.WithLabelValues(string(l))
	}
	m.Health.WithLabelValues(spec.HealthUnknown)
	return m, nil
}
