package datadeployer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Values of the result label of autocrane_datadeployer_syncs_total.
const (
	resultDownloaded = "downloaded"
	resultLocal      = "local"
	resultFailed     = "failed"
)

// Values of the result label of autocrane_datadeployer_notifications_total.
const (
	resultSuccess = "success"
	resultError   = "error"
)

type metrics struct {
	syncs         *prometheus.CounterVec
	downloaded    *prometheus.CounterVec
	extracted     *prometheus.CounterVec
	swapSeconds   prometheus.Histogram
	versionInfo   *prometheus.GaugeVec
	notifications *prometheus.CounterVec
}

// newMetrics registers the metrics. Labels are bounded: deployment names
// come from --deployments, and version_info holds one series per
// deployment (the old one is deleted at each swap).
func newMetrics(reg prometheus.Registerer, deployments []string, notifyKinds []string) (*metrics, error) {
	m := &metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_datadeployer_syncs_total",
			Help: "Syncs that ended, by deployment and result: downloaded (a new version went live), local (a version already on disk went live, e.g. a rollback), failed.",
		}, []string{"deployment", "result"}),
		downloaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_datadeployer_downloaded_bytes_total",
			Help: "Blob bytes received from the data repository, by deployment.",
		}, []string{"deployment"}),
		extracted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_datadeployer_extracted_bytes_total",
			Help: "Bytes of regular files written by extractions, by deployment.",
		}, []string{"deployment"}),
		swapSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autocrane_datadeployer_swap_duration_seconds",
			Help:    "Time to publish a version: create the new symlink and rename it over LOCATION/NAME.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
		}),
		versionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autocrane_datadeployer_version_info",
			Help: "1 for the version live at LOCATION/NAME, by deployment, source, version and digest.",
		}, []string{"deployment", "source", "version", "digest"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_datadeployer_notifications_total",
			Help: "Notifications sent to the app after a swap, by kind (url, signal) and result (success, error).",
		}, []string{"kind", "result"}),
	}
	for _, c := range []prometheus.Collector{m.syncs, m.downloaded, m.extracted, m.swapSeconds, m.versionInfo, m.notifications} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Series exist from the start, so rates are defined before the first event.
	for _, d := range deployments {
		for _, r := range []string{resultDownloaded, resultLocal, resultFailed} {
			m.syncs.WithLabelValues(d, r)
		}
		m.downloaded.WithLabelValues(d)
		m.extracted.WithLabelValues(d)
	}
	for _, k := range notifyKinds {
		m.notifications.WithLabelValues(k, resultSuccess)
		m.notifications.WithLabelValues(k, resultError)
	}
	return m, nil
}

// setLive makes v the one version_info series of deployment.
func (m *metrics) setLive(deployment string, v *versionRecord) {
	m.versionInfo.DeletePartialMatch(prometheus.Labels{"deployment": deployment})
	if v != nil {
		m.versionInfo.WithLabelValues(deployment, v.Source, v.Version, v.Digest).Set(1)
	}
}
