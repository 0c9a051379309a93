package datadeployer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

func getWatchdog(t *testing.T, h http.Handler) (int, WatchdogAnswer) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/watchdog", nil))
	var a WatchdogAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("watchdog body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, a
}

// TestWatchdogTurnsErrorAfterGraceAndAttempts drives the retry timers and
// the grace period with a fake clock.
func TestWatchdogTurnsErrorAfterGraceAndAttempts(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fake := testingclock.NewFakeClock(start)
	h := newHarness(t, func(o *Options) {
		o.Clock = fake
		o.RetryMin, o.RetryMax = time.Second, time.Second
		o.WatchdogFailureGrace, o.WatchdogFailureAttempts = 10*time.Minute, 3
		o.random = func() float64 { return 0 }
	})
	handler := h.d.Handler()
	v1 := newVersion(t, "v1")
	h.repo.Add(v1.content)
	h.repo.Down(true)
	h.start()

	if code, a := getWatchdog(t, handler); code != http.StatusOK || a.Level != spec.LevelInfo {
		t.Fatalf("before any failure: %d %+v", code, a)
	}
	h.request("models", v1)
	failures := func(n int) {
		t.Helper()
		h.waitStatus("models", "failures", func(s DeploymentStatus) bool { return s.ConsecutiveFailures == n })
	}
	failures(1)
	code, a := getWatchdog(t, handler)
	if code != http.StatusOK || a.Level != spec.LevelWarning || !strings.HasPrefix(a.Message, "models: sync failing for 0s (1 attempts): download models/v1/sha256:") {
		t.Fatalf("after one failure: %d %+v", code, a)
	}
	for n := 2; n <= 3; n++ {
		eventually(t, "the retry timer", func() (bool, string) { return fake.HasWaiters(), "" })
		fake.Step(time.Second) // the backoff: half of 1s plus no jitter, so 1s is enough
		failures(n)
	}
	if code, a := getWatchdog(t, handler); code != http.StatusOK || a.Level != spec.LevelWarning {
		t.Fatalf("three failures within the grace period: %d %+v", code, a)
	}
	s, _ := h.d.Status().Deployment("models")
	if !s.FailingSince.Equal(start) {
		t.Fatalf("failingSince = %v, want %v", s.FailingSince, start)
	}
	eventually(t, "the retry timer", func() (bool, string) { return fake.HasWaiters(), "" })
	fake.Step(10 * time.Minute)
	failures(4)
	code, a = getWatchdog(t, handler)
	if code != http.StatusInternalServerError || a.Level != spec.LevelError ||
		!strings.HasPrefix(a.Message, "models: sync failing for 10m2s (4 attempts): download models/v1/") || !strings.Contains(a.Message, "503 Service Unavailable") {
		t.Fatalf("after the grace period: %d %+v", code, a)
	}

	h.repo.Down(false)
	eventually(t, "the retry timer", func() (bool, string) { return fake.HasWaiters(), "" })
	fake.Step(time.Second)
	h.waitLive("models", v1)
	if code, a := getWatchdog(t, handler); code != http.StatusOK || a.Level != spec.LevelInfo {
		t.Fatalf("after recovery: %d %+v", code, a)
	}
}

func TestBackoff(t *testing.T) {
	tests := map[string]struct {
		failures int
		random   float64
		want     time.Duration
	}{
		"first, no jitter":        {failures: 1, random: 0, want: 500 * time.Millisecond},
		"first, most jitter":      {failures: 1, random: 0.5, want: 750 * time.Millisecond},
		"third doubles twice":     {failures: 3, random: 0, want: 2 * time.Second},
		"capped":                  {failures: 20, random: 0, want: 30 * time.Second},
		"huge count, no overflow": {failures: 1000, random: 0.999, want: 59_970 * time.Millisecond},
		"zero treated as one":     {failures: 0, random: 0, want: 500 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := backoff{min: time.Second, max: time.Minute, random: func() float64 { return tc.random }}
			if got := b.delay(tc.failures); got != tc.want {
				t.Fatalf("delay(%d) = %v, want %v", tc.failures, got, tc.want)
			}
		})
	}
}
