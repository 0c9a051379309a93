package certs

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ExpiryMetricName is the gauge of the served certificate's NotAfter.
const ExpiryMetricName = "autocrane_webhook_certificate_expiry_timestamp_seconds"

// expiryCollector reports the NotAfter of the certificate a source serves
// now. Before one is loaded it reports nothing, rather than a zero that
// would read as "expired in 1970".
type expiryCollector struct {
	src  Source
	desc *prometheus.Desc
}

// NewExpiryCollector returns the collector of ExpiryMetricName for src.
// It reads the source at every scrape, so it always shows the certificate
// being served, in either certificate mode.
func NewExpiryCollector(src Source) prometheus.Collector {
	return &expiryCollector{
		src: src,
		desc: prometheus.NewDesc(ExpiryMetricName,
			"Expiry (NotAfter, Unix seconds) of the certificate the webhook server serves now; absent until one is loaded.",
			nil, nil),
	}
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	leaf := Leaf(c.src)
	if leaf == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()))
}
