package testworkload

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// paths are the values of the requests counter's path label; anything
// else is counted as "other", so that scanners cannot grow the series.
var paths = []string{"/ping", "/watchdog", "/fail", "/warn", "/recover", "/metrics"}

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
}

// newMetrics registers the workload's metrics in a registry of its own;
// state is read at every scrape, so that a mode that expired shows so.
func newMetrics(state func() State) *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "testworkload_http_requests_total",
			Help: "HTTP requests answered, by path (/ping, /watchdog, /fail, /warn, /recover, /metrics or other) and status code.",
		}, []string{"path", "code"}),
	}
	reg.MustRegister(m.requests)
	for _, mode := range Modes {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "testworkload_watchdog_mode",
			Help:        "1 for the mode /watchdog answers in now (ok, warning or failing), 0 for the others.",
			ConstLabels: prometheus.Labels{"mode": string(mode)},
		}, func() float64 {
			if state().Mode == mode {
				return 1
			}
			return 0
		}))
	}
	// The watchdog's series exist before its first answer.
	m.requests.WithLabelValues("/watchdog", "200")
	m.requests.WithLabelValues("/watchdog", "500")
	return m
}

// count wraps h to count every request by path and status code.
func (m *metrics) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		path := "other"
		for _, p := range paths {
			if r.URL.Path == p {
				path = p
				break
			}
		}
		m.requests.WithLabelValues(path, strconv.Itoa(rec.code)).Inc()
	})
}

// codeRecorder remembers the status code a handler wrote.
type codeRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (c *codeRecorder) WriteHeader(code int) {
	if !c.wroteHeader {
		c.code, c.wroteHeader = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeRecorder) Write(b []byte) (int, error) {
	c.wroteHeader = true
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }
