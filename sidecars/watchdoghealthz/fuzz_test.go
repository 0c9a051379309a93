package watchdoghealthz

import (
	"strings"
	"testing"
	"time"

	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

// FuzzObserveDecide feeds two annotations files, as the kubelet would write
// them, through Observe and Decide, and checks what must always hold.
func FuzzObserveDecide(f *testing.F) {
	f.Add(podinfo.Format(pod("probe a", probe, "status a", status(spec.LevelError, t0, "down"))),
		podinfo.Format(pod("probe a", probe, "status a", status(spec.LevelInfo, at(time.Second), "ok"))), int64(2), int64(40))
	f.Add(podinfo.Format(pod("probe a", probe)), podinfo.Format(pod("status b", "warning/2030-01-02T03:04:05Z/x/y")), int64(-5), int64(1))
	f.Add([]byte(`status.autocrane.io/x="error/2030-01-02T03:04:05Z/\u00e9\n"`), []byte(""), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, first, second []byte, gap, later int64) {
		a1, err1 := podinfo.Parse(first)
		a2, err2 := podinfo.Parse(second)
		if err1 != nil || err2 != nil {
			return
		}
		// The statuses' timestamps are near t0; the process starts an hour
		// later or earlier, and reads twice.
		started := at(time.Duration(gap%3600) * time.Second)
		t1 := started.Add(time.Duration(abs(gap%60)) * time.Second)
		t2 := t1.Add(time.Duration(abs(later%3600)) * time.Second)
		now := t2.Add(time.Duration(abs(later%7200)) * time.Second)
		h := NewHistory(started).Observe(a1, t1).Observe(a2, t2)
		if s := h.ErrorFreeSince; !s.IsZero() && (s.Before(h.Started) || s.After(t2)) {
			t.Fatalf("ErrorFreeSince %v outside [start %v, last observation %v]", s, h.Started, t2)
		}
		for _, cfg := range []Config{{}, {MinReady: time.Minute}, {MinReady: time.Minute, AlwaysHealthyAfter: d(3600)}} {
			dec := Decide(h, cfg, now)
			if dec.Healthy != (dec.Result == ResultHealthy || dec.Result == ResultAlwaysHealthy) {
				t.Fatalf("Healthy %v with result %s", dec.Healthy, dec.Result)
			}
			if dec.ErrorFreeFor < 0 || dec.ErrorFree == h.ErrorFreeSince.IsZero() {
				t.Fatalf("ErrorFree %v for %v with ErrorFreeSince %v", dec.ErrorFree, dec.ErrorFreeFor, h.ErrorFreeSince)
			}
			if dec.Result == ResultError && len(h.Watchdogs.Errors()) == 0 {
				t.Fatalf("result error without an erroring watchdog: %+v", h.Watchdogs)
			}
			if len(dec.Reason) > 1024 || strings.ContainsFunc(dec.Reason, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("reason of %d bytes, or not printable ASCII: %q", len(dec.Reason), dec.Reason)
			}
		}
	})
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
