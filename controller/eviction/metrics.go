package eviction

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the eviction controller's metrics, with fixed label values.
type Metrics struct {
	// Evictions by outcome: evicted, blocked_budget, gone, failed, dry_run.
	Evictions *prometheus.CounterVec
	// Brakes by brake: storm, max_in_flight, rate_limit, opted_out, no_owner.
	Brakes *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_evictions_total",
			Help: "Eviction attempts by outcome: evicted, blocked_budget (429), gone (404), failed, dry_run.",
		}, []string{"outcome"}),
		Brakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_eviction_brakes_total",
			Help: "Times a pod in error was held back, by brake: storm, max_in_flight, rate_limit, opted_out, no_owner.",
		}, []string{"brake"}),
	}
	for _, c := range []prometheus.Collector{m.Evictions, m.Brakes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register eviction metrics: %w", err)
		}
	}
	for _, o := range []string{"evicted", "blocked_budget", "gone", "failed", "dry_run"} {
		m.Evictions.WithLabelValues(o)
	}
	for _, b := range []string{"storm", "max_in_flight", "rate_limit", "opted_out", "no_owner"} {
		m.Brakes.WithLabelValues(b)
	}
	return m, nil
}
