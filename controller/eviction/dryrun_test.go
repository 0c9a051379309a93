package eviction

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
)

// With --dry-run-evictions the reconciler records a WouldEvict Event on the
// pod and its owner and backs off, and never calls the API: its client is
// nil here, so an eviction attempt would panic.
func TestDryRunRecordsWithoutEvicting(t *testing.T) {
	m, err := NewMetrics(prometheus.NewPedanticRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewFakeRecorder(10)
	r := &Reconciler{Recorder: rec, Metrics: m, Clock: clocktesting.NewFakeClock(now), DryRun: true,
		backoff: map[types.UID]backoff{}, stopped: map[types.UID]bool{}, noted: map[types.UID]Reason{}, evicted: map[types.NamespacedName]types.UID{}}
	p := pod("a", errorSince(time.Hour))
	// A StatefulSet's pod: the owner needs no lookup.
	p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = "StatefulSet", "db"
	res, err := r.evict(context.Background(), p, Decision{Evict: true, Reason: ReasonEvict, Message: "in error"})
	if err != nil || res.RequeueAfter != maxBackoff {
		t.Fatalf("evict = %+v, %v; want a requeue after %s", res, err, maxBackoff)
	}
	for _, want := range []string{"Normal WouldEvict dry run, not evicted: in error", "Normal WouldEvict pod a: dry run, not evicted: in error"} {
		got := <-rec.Events
		if !strings.HasPrefix(got, want) {
			t.Errorf("event %q, want prefix %q", got, want)
		}
	}
	if got := testutil.ToFloat64(m.Evictions.WithLabelValues("dry_run")); got != 1 {
		t.Errorf("dry_run evictions = %v, want 1", got)
	}
	if d := Decide(Input{Pod: p, Siblings: nil, Now: now, StormShare: 0.5, BackoffUntil: r.backoff[p.UID].until}); d.Reason != ReasonBackoff {
		t.Errorf("after a dry run the pod waits: %s", d.Reason)
	}
}
