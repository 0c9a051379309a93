package webhook

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// webhookMutatePod is the value of the webhook label for the pod mutator.
const webhookMutatePod = "mutate-pod"

// Results: what the handler answered. Each is the value of the result label.
const (
	resultInjected = "injected"
	resultSkipped  = "skipped"
	resultDenied   = "denied"
	resultErrored  = "errored"
)

// Reasons: why the handler answered as it did. Each is the value of the
// reason label; the scope reasons are spec.ScopeReason values, the others
// are injector's or this package's.
const (
	// reasonInjected: the pod was patched.
	reasonInjected = "injected"
	// reasonUnchanged: the pod already holds what it asks for (a second pass).
	reasonUnchanged = "unchanged"
	// reasonNothingToInject: in scope, but the pod asks for nothing.
	reasonNothingToInject = "nothing-to-inject"
	// reasonPodDisabled, reasonNamespaceDisabled, reasonNotOptedIn: out of
	// scope (spec.InjectionScope).
	reasonPodDisabled       = "pod-disabled"
	reasonNamespaceDisabled = "namespace-disabled"
	reasonNotOptedIn        = "not-opted-in"
	// reasonExcludedNamespace: the pod's namespace is in ExcludedNamespaces.
	reasonExcludedNamespace = "excluded-namespace"
	// reasonUnsupportedOperation: not a CREATE.
	reasonUnsupportedOperation = "unsupported-operation"
	// reasonUnsupportedResource: not a core/v1 pod (or a subresource).
	reasonUnsupportedResource = "unsupported-resource"
	// reasonOther: a skip reason injector returned that this package does
	// not know; counted here rather than as a new label value.
	reasonOther = "other"
	// reasonInvalid: the pod's or namespace's AutoCrane keys are invalid.
	reasonInvalid = "invalid"
	// reasonDecode: the request's object is not a pod in JSON (HTTP 400).
	reasonDecode = "decode"
	// reasonNamespaceLookup: the namespace could not be read (HTTP 500).
	reasonNamespaceLookup = "namespace-lookup"
	// reasonPatch: the JSON patch could not be computed (HTTP 500).
	reasonPatch = "patch"
	// reasonInternal: any other failure of ours (HTTP 500).
	reasonInternal = "internal"
	// reasonPanic: the handler panicked and recovered (HTTP 500).
	reasonPanic = "panic"
)

// admissionReasons is every (result, reason) pair the handler counts. It
// bounds the label values, feeds the Help text and pre-creates the series.
var admissionReasons = []struct {
	result  string
	reasons []string
}{
	{resultInjected, []string{reasonInjected}},
	{resultSkipped, []string{
		reasonUnchanged, reasonNothingToInject,
		reasonPodDisabled, reasonNamespaceDisabled, reasonNotOptedIn,
		reasonExcludedNamespace, reasonUnsupportedOperation, reasonUnsupportedResource,
		reasonOther,
	}},
	{resultDenied, []string{reasonInvalid}},
	{resultErrored, []string{reasonDecode, reasonNamespaceLookup, reasonPatch, reasonInternal, reasonPanic}},
}

// skipReason bounds a skip reason from injector.Result to the known set.
func skipReason(r string) string {
	for _, g := range admissionReasons {
		if g.result == resultSkipped && slices.Contains(g.reasons, r) {
			return r
		}
	}
	return reasonOther
}

// durationBuckets span 100 µs (a typical pod) to 5 s (the webhook's
// timeoutSeconds in config/webhook/manifests.yaml).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// metrics holds the collectors of one PodMutator.
type metrics struct {
	// admissionsVec and durationVec are registered; the others are curried
	// with the webhook label.
	admissionsVec *prometheus.CounterVec
	durationVec   *prometheus.HistogramVec
	admissions    *prometheus.CounterVec
	duration      prometheus.Observer
}

func admissionsHelp() string {
	var b strings.Builder
	b.WriteString("Admission requests handled by AutoCrane's webhooks, by webhook, result and reason. Results and their reasons: ")
	for i, g := range admissionReasons {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s (%s)", g.result, strings.Join(g.reasons, ", "))
	}
	b.WriteString(".")
	return b.String()
}

// newMetrics creates the collectors for webhook and, when reg is not nil,
// registers them. Every (result, reason) series is created at zero, so
// rates exist before the first event.
func newMetrics(reg prometheus.Registerer, webhook string) (*metrics, error) {
	m := &metrics{
		admissionsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_webhook_admissions_total",
			Help: admissionsHelp(),
		}, []string{"webhook", "result", "reason"}),
		durationVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "autocrane_webhook_admission_duration_seconds",
			Help:    "Time AutoCrane's webhooks take to answer an admission request, from the handler's start to its response, by webhook.",
			Buckets: durationBuckets,
		}, []string{"webhook"}),
	}
	labels := prometheus.Labels{"webhook": webhook}
	m.admissions = m.admissionsVec.MustCurryWith(labels)
	m.duration = m.durationVec.With(labels)
	for _, g := range admissionReasons {
		for _, r := range g.reasons {
			m.admissions.WithLabelValues(g.result, r)
		}
	}
	if reg == nil {
		return m, nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.admissionsVec, m.durationVec} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("register webhook metrics: %w", err)
		}
		done = append(done, c)
	}
	return m, nil
}

// observe counts one admission and its duration.
func (m *metrics) observe(result, reason string, d time.Duration) {
	m.admissions.WithLabelValues(result, reason).Inc()
	m.duration.Observe(d.Seconds())
}
