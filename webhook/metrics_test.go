package webhook

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsArePromlintClean(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := newMetrics(reg, webhookMutatePod); err != nil {
		t.Fatalf("newMetrics: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatalf("Lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestMetricsSeriesExistBeforeTheFirstEvent(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newMetrics(reg, webhookMutatePod)
	if err != nil {
		t.Fatalf("newMetrics: %v", err)
	}
	want := 0
	for _, g := range admissionReasons {
		want += len(g.reasons)
	}
	if got := testutil.CollectAndCount(m.admissionsVec); got != want {
		t.Errorf("admissions_total has %d series, want every (result, reason) pair: %d", got, want)
	}
	for _, s := range []struct{ result, reason string }{{resultInjected, reasonInjected}, {resultErrored, reasonInternal}, {resultDenied, reasonInvalid}} {
		if got := testutil.ToFloat64(m.admissions.WithLabelValues(s.result, s.reason)); got != 0 {
			t.Errorf("%s/%s = %v, want 0", s.result, s.reason, got)
		}
	}
	if got := testutil.CollectAndCount(m.durationVec); got != 1 {
		t.Errorf("admission_duration_seconds has %d series, want 1", got)
	}
}

func TestMetricsHelpListsEveryLabelValue(t *testing.T) {
	help := admissionsHelp()
	for _, g := range admissionReasons {
		for _, r := range g.reasons {
			if !strings.Contains(help, r) {
				t.Errorf("help text does not list reason %q of result %q", r, g.result)
			}
		}
	}
	const want = "Admission requests handled by AutoCrane's webhooks, by webhook, result and reason. Results and their reasons: " +
		"injected (injected); " +
		"skipped (unchanged, nothing-to-inject, pod-disabled, namespace-disabled, not-opted-in, excluded-namespace, unsupported-operation, unsupported-resource, other); " +
		"denied (invalid); " +
		"errored (decode, namespace-lookup, patch, internal, panic)."
	if diff := cmp.Diff(want, help); diff != "" {
		t.Errorf("help (-want +got):\n%s", diff)
	}
}

func TestSkipReasonIsBounded(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"scope reason":           {"not-opted-in", "not-opted-in"},
		"nothing to inject":      {"nothing-to-inject", "nothing-to-inject"},
		"unknown reason":         {"a-new-reason", "other"},
		"reason of another kind": {"injected", "other"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := skipReason(tc.in); got != tc.want {
				t.Errorf("skipReason(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
