package datarepository

import (
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// Sync results, the values of the result label.
const (
	resultNewVersion = "new_version"
	resultUnchanged  = "unchanged"
	resultError      = "error"
)

var syncResults = []string{resultNewVersion, resultUnchanged, resultError}

// metrics are the repository's Prometheus metrics. The source label takes
// only declared source names, which the configuration bounds; a removed
// source's series are deleted.
type metrics struct {
	syncs        *prometheus.CounterVec
	syncDuration *prometheus.HistogramVec
	versions     *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	bytesServed  prometheus.Counter
	blobsDeleted prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_datarepository_syncs_total",
			Help: "Checks of a source, by source and result (new_version, unchanged or error).",
		}, []string{"source", "result"}),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autocrane_datarepository_sync_duration_seconds",
			Help:    "Time of one check of a source, download and packing included, by source.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"source"}),
		versions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autocrane_datarepository_versions",
			Help: "Versions a source holds (the newest --keep plus pinned ones), by source.",
		}, []string{"source"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autocrane_datarepository_last_success_timestamp_seconds",
			Help: "Unix time of a source's last successful check, by source.",
		}, []string{"source"}),
		bytesServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autocrane_datarepository_blob_bytes_served_total",
			Help: "Bytes of blobs sent to clients.",
		}),
		blobsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "autocrane_datarepository_gc_blobs_deleted_total",
			Help: "Blobs deleted because no kept version referenced them any more.",
		}),
	}
	for _, c := range []prometheus.Collector{m.syncs, m.syncDuration, m.versions, m.lastSuccess, m.bytesServed, m.blobsDeleted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// addSource creates a source's series, so rates exist before its first
// error.
func (m *metrics) addSource(name string) {
	for _, r := range syncResults {
		m.syncs.WithLabelValues(name, r)
	}
	m.syncDuration.WithLabelValues(name)
	m.versions.WithLabelValues(name)
}

// removeSource deletes a removed source's series.
func (m *metrics) removeSource(name string) {
	for _, r := range syncResults {
		m.syncs.DeleteLabelValues(name, r)
	}
	m.syncDuration.DeleteLabelValues(name)
	m.versions.DeleteLabelValues(name)
	m.lastSuccess.DeleteLabelValues(name)
}

// countingWriter counts the bytes of a response. It keeps ReadFrom, so
// http.ServeContent still sends files with sendfile.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		c.n += n
		return n, err
	}
	n, err := io.Copy(struct{ io.Writer }{c}, r)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
