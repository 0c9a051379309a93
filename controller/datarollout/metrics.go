package datarollout

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data rollout's metrics. Every label has a fixed, small
// set of values; no line, pod or version appears in a label.
type Metrics struct {
	// Versions counts, over all lines, the last known good versions, the
	// versions rolling out and the bad versions.
	Versions *prometheus.GaugeVec
	// Duration is how long rollouts took, by result: promoted or failed.
	Duration *prometheus.HistogramVec
	// Rollbacks counts rollbacks (a failed or rejected version).
	Rollbacks prometheus.Counter
	// Waves counts waves by result: started, passed, failed.
	Waves *prometheus.CounterVec
	// RepositoryRequests by op (source, pin) and result (ok, error).
	RepositoryRequests *prometheus.CounterVec
	// StatusReads by result: ok, error, skipped.
	StatusReads *prometheus.CounterVec
	// Writes of pods and state ConfigMaps, by kind (request, status,
	// state) and result (ok, conflict, error).
	Writes *prometheus.CounterVec

	mu    sync.Mutex
	lines map[string]lineCounts
}

type lineCounts struct{ lkg, rolling, bad int }

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Versions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autocrane_data_versions",
			Help: "Data versions over all lines (namespace, repository, source), by state: lkg (last known good), rolling, bad.",
		}, []string{"state"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autocrane_data_rollout_duration_seconds",
			Help:    "Time from the start of a data rollout to its end, by result: promoted or failed.",
			Buckets: []float64{60, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 14400, 28800, 86400},
		}, []string{"result"}),
		Rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autocrane_data_rollbacks_total",
			Help: "Data rollouts rolled back: a pod went to error, a wave missed its progress deadline, or an operator rejected the version.",
		}),
		Waves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_data_waves_total",
			Help: "Waves of data rollouts, by result: started, passed, failed.",
		}, []string{"result"}),
		RepositoryRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_data_repository_requests_total",
			Help: "Requests to data repositories, by op (source, pin) and result (ok, error).",
		}, []string{"op", "result"}),
		StatusReads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_data_status_reads_total",
			Help: "Reads of datadeployers' /status, by result: ok, error, skipped (the pod's IP changed or it is gone).",
		}, []string{"result"}),
		Writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_data_writes_total",
			Help: "Writes by the data rollout, by kind (request, status, state) and result (ok, conflict, error).",
		}, []string{"kind", "result"}),
		lines: map[string]lineCounts{},
	}
	for _, c := range []prometheus.Collector{m.Versions, m.Duration, m.Rollbacks, m.Waves, m.RepositoryRequests, m.StatusReads, m.Writes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register data rollout metrics: %w", err)
		}
	}
	for _, s := range []string{"lkg", "rolling", "bad"} {
		m.Versions.WithLabelValues(s)
	}
	for _, r := range []string{ResultPromoted, ResultFailed} {
		m.Duration.WithLabelValues(r)
	}
	for _, r := range []string{"started", "passed", "failed"} {
		m.Waves.WithLabelValues(r)
	}
	for _, op := range []string{"source", "pin"} {
		for _, r := range []string{"ok", "error"} {
			m.RepositoryRequests.WithLabelValues(op, r)
		}
	}
	for _, r := range []string{"ok", "error", "skipped"} {
		m.StatusReads.WithLabelValues(r)
	}
	for _, k := range []string{"request", "status", "state"} {
		for _, r := range []string{"ok", "conflict", "error"} {
			m.Writes.WithLabelValues(k, r)
		}
	}
	return m, nil
}

// setLine records one line's state for the versions gauge.
func (m *Metrics) setLine(name string, st State) {
	c := lineCounts{bad: len(st.Bad)}
	if st.LKG != nil {
		c.lkg = 1
	}
	if st.Rollout != nil {
		c.rolling = 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines[name] = c
	var total lineCounts
	for _, l := range m.lines {
		total.lkg += l.lkg
		total.rolling += l.rolling
		total.bad += l.bad
	}
	m.Versions.WithLabelValues("lkg").Set(float64(total.lkg))
	m.Versions.WithLabelValues("rolling").Set(float64(total.rolling))
	m.Versions.WithLabelValues("bad").Set(float64(total.bad))
}

// observe counts what a decision did.
func (m *Metrics) observe(d Decision) {
	for _, e := range d.Events {
		switch e.Reason {
		case ReasonWaveStarted:
			m.Waves.WithLabelValues("started").Inc()
		case ReasonWavePassed:
			m.Waves.WithLabelValues("passed").Inc()
		case ReasonWaveFailed:
			m.Waves.WithLabelValues("failed").Inc()
		case ReasonRolledBack:
			m.Rollbacks.Inc()
		}
	}
	if f := d.Finished; f != nil {
		m.Duration.WithLabelValues(f.Result).Observe(f.Duration.Seconds())
	}
}
