package watchdoghealthz

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	registry *prometheus.Registry
	answers  *prometheus.CounterVec
	updates  prometheus.Counter
}

// newMetrics registers the sidecar's metrics in a registry of its own.
func newMetrics(errorFreeSeconds func() float64) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		registry: reg,
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "watchdoghealthz_healthz_answers_total",
			Help: "Answers of /healthz, by result: always_healthy, not_read, error, waiting, warming_up or healthy (healthy and always_healthy are 200, the others 503).",
		}, []string{"result"}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "watchdoghealthz_annotations_updates_total",
			Help: "Reads of the annotations file that found them changed (the first read included).",
		}),
	}
	reg.MustRegister(m.answers, m.updates, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "watchdoghealthz_error_free_seconds",
		Help: "How long the pod's watchdogs have been error-free, as /healthz counts it; 0 while an error or a missing status blocks it.",
	}, errorFreeSeconds))
	for _, r := range Results {
		m.answers.WithLabelValues(string(r))
	}
	return m
}
