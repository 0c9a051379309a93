package watchdoghealthz

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/autocrane/autocrane/spec"
)

// t0 is when the sidecar process starts in every case.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func status(level spec.Level, when time.Time, msg string) string {
	return spec.WatchdogStatus{Level: level, Time: when, Message: msg}.String()
}

// pod builds annotations from key/value pairs; "probe NAME" declares a
// watchdog and "status NAME" sets its status.
func pod(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		key := kv[i]
		if name, ok := strings.CutPrefix(key, "probe "); ok {
			key = spec.PrefixProbe + name
		} else if name, ok := strings.CutPrefix(key, "status "); ok {
			key = spec.PrefixWatchdogStatus + name
		}
		m[key] = kv[i+1]
	}
	return m
}

const probe = "POD_IP:8080/watchdog"

// observation is one read of the annotations, at t0 + after.
type observation struct {
	after       time.Duration
	annotations map[string]string
}

func d(s int) *time.Duration { v := time.Duration(s) * time.Second; return &v }

func TestDecide(t *testing.T) {
	minReady30 := Config{MinReady: 30 * time.Second}
	tests := map[string]struct {
		cfg          Config
		observations []observation
		now          time.Duration
		want         Decision
	}{
		"not read yet": {
			cfg: minReady30, now: 10 * time.Second,
			want: Decision{Result: ResultNotRead, Reason: "the annotations file was not read yet"},
		},
		"no watchdogs: the clock starts at process start": {
			cfg: minReady30, observations: []observation{{2 * time.Second, pod("app", "x")}}, now: 10 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 10s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 10 * time.Second},
		},
		"no watchdogs: healthy once min-ready has passed": {
			cfg: minReady30, observations: []observation{{0, pod()}}, now: 30 * time.Second,
			want: Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 30s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 30 * time.Second},
		},
		"min-ready 0 is healthy at the first read": {
			observations: []observation{{0, pod()}},
			want:         Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 0s, at least min-ready-seconds (0s)", ErrorFree: true},
		},
		"fractions of seconds are not shown": {
			cfg: minReady30, observations: []observation{{0, pod()}}, now: 29*time.Second + 999*time.Millisecond,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 29s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 29*time.Second + 999*time.Millisecond},
		},
		"a declared watchdog without a status holds the clock": {
			cfg: minReady30, observations: []observation{{time.Second, pod("probe alive", probe)}}, now: time.Hour,
			want: Decision{Result: ResultWaiting, Reason: "waiting for a valid status of watchdog alive"},
		},
		"waiting names at most three watchdogs": {
			cfg: minReady30, observations: []observation{{time.Second, pod("probe a", probe, "probe b", probe, "probe c", probe, "probe d", probe, "probe e", probe, "status c", status(spec.LevelInfo, t0, "ok"))}},
			want: Decision{Result: ResultWaiting, Reason: "waiting for a valid status of watchdog a, b, d and 1 more"},
		},
		"the clock starts at the timestamp of the status that ended the wait": {
			cfg: minReady30,
			observations: []observation{
				{time.Second, pod("probe alive", probe)},
				{20 * time.Second, pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(15*time.Second), "ok"))},
			},
			now:  40 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 25s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 25 * time.Second},
		},
		"a status older than the wait starts the clock at the observation": {
			cfg: minReady30,
			observations: []observation{
				{time.Second, pod("probe alive", probe)},
				{20 * time.Second, pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(-time.Hour), "ok"))},
			},
			now:  40 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 20s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 20 * time.Second},
		},
		"a status from the future starts the clock at the observation": {
			cfg: minReady30,
			observations: []observation{
				{time.Second, pod("probe alive", probe)},
				{20 * time.Second, pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(time.Hour), "ok"))},
			},
			now:  40 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 20s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 20 * time.Second},
		},
		"declared watchdogs with statuses at the first read: the clock starts at process start": {
			cfg:          minReady30,
			observations: []observation{{time.Second, pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(-time.Hour), "ok"))}},
			now:          30 * time.Second,
			want:         Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 30s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 30 * time.Second},
		},
		"an error at the first read": {
			cfg:          minReady30,
			observations: []observation{{0, pod("probe alive", probe, "status alive", status(spec.LevelError, at(-5*time.Minute), "connection refused"))}},
			now:          time.Hour,
			want:         Decision{Result: ResultError, Reason: "watchdog alive is error since 2030-01-02T02:59:05Z: connection refused"},
		},
		"an error without a message": {
			cfg:          minReady30,
			observations: []observation{{0, pod("status alive", status(spec.LevelError, t0, ""))}},
			want:         Decision{Result: ResultError, Reason: "watchdog alive is error since 2030-01-02T03:04:05Z"},
		},
		"several errors: the first by name, then the others": {
			cfg: minReady30,
			observations: []observation{{0, pod(
				"status e", status(spec.LevelError, t0, "e"), "status b", status(spec.LevelError, t0, "b"),
				"status a", status(spec.LevelError, t0, "first"), "status d", status(spec.LevelError, t0, "d"),
				"status c", status(spec.LevelError, t0, "c"), "status f", status(spec.LevelInfo, t0, "f"))}},
			want: Decision{Result: ResultError, Reason: "watchdog a is error since 2030-01-02T03:04:05Z: first (and 4 more in error: b, c, d and 1 more)"},
		},
		"an error of an undeclared watchdog counts": {
			cfg:          minReady30,
			observations: []observation{{0, pod("status posted", status(spec.LevelError, t0, "posted by hand"))}},
			want:         Decision{Result: ResultError, Reason: "watchdog posted is error since 2030-01-02T03:04:05Z: posted by hand"},
		},
		"after an error, the clock restarts at the recovery's timestamp": {
			cfg: minReady30,
			observations: []observation{
				{0, pod("probe alive", probe, "status alive", status(spec.LevelError, at(-5*time.Minute), "down"))},
				{60 * time.Second, pod("probe alive", probe, "status alive", status(spec.LevelInfo, at(50*time.Second), "ok"))},
			},
			now:  70 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 20s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 20 * time.Second},
		},
		"a recovery timestamp before the error was last seen: the observation": {
			cfg: Config{MinReady: time.Minute},
			observations: []observation{
				{0, pod("status alive", status(spec.LevelError, at(-5*time.Minute), "down"))},
				{30 * time.Second, pod("status alive", status(spec.LevelError, at(-5*time.Minute), "still down"))},
				{60 * time.Second, pod("status alive", status(spec.LevelInfo, at(20*time.Second), "ok"))},
			},
			now:  100 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 40s, less than min-ready-seconds (1m0s)", ErrorFree: true, ErrorFreeFor: 40 * time.Second},
		},
		"several errors recover: the latest timestamp": {
			cfg: minReady30,
			observations: []observation{
				{0, pod("status a", status(spec.LevelError, t0, "down"), "status b", status(spec.LevelError, t0, "down"))},
				{60 * time.Second, pod("status a", status(spec.LevelInfo, at(40*time.Second), "ok"), "status b", status(spec.LevelWarning, at(50*time.Second), "slow"))},
			},
			now:  80 * time.Second,
			want: Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 30s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 30 * time.Second},
		},
		"an erroring watchdog that disappears: the observation": {
			cfg: minReady30,
			observations: []observation{
				{0, pod("status a", status(spec.LevelError, t0, "down"))},
				{30 * time.Second, pod()},
			},
			now:  40 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 10s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 10 * time.Second},
		},
		"an error stops a running clock": {
			cfg: minReady30,
			observations: []observation{
				{0, pod("status a", status(spec.LevelInfo, t0, "ok"))},
				{time.Hour, pod("status a", status(spec.LevelError, at(time.Hour-time.Second), "down"))},
			},
			now:  time.Hour + time.Second,
			want: Decision{Result: ResultError, Reason: "watchdog a is error since 2030-01-02T04:04:04Z: down"},
		},
		"warning is not an error": {
			cfg:          minReady30,
			observations: []observation{{0, pod("probe a", probe, "status a", status(spec.LevelWarning, t0, "slow"))}},
			now:          time.Minute,
			want:         Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 1m0s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: time.Minute},
		},
		"an unparsable status of an undeclared watchdog is ignored": {
			cfg:          minReady30,
			observations: []observation{{0, pod("status x", "error")}},
			now:          time.Minute,
			want:         Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 1m0s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: time.Minute},
		},
		"an unparsable status of a declared watchdog is no status": {
			cfg:          minReady30,
			observations: []observation{{0, pod("probe x", probe, "status x", "error/yesterday/down")}},
			now:          time.Minute,
			want:         Decision{Result: ResultWaiting, Reason: "waiting for a valid status of watchdog x"},
		},
		"an invalid probe declares nothing": {
			cfg:          minReady30,
			observations: []observation{{0, pod("probe x", "10.0.0.1:8080/w")}},
			now:          time.Minute,
			want:         Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 1m0s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: time.Minute},
		},
		"once started, a new watchdog without a status does not stop the clock": {
			cfg: minReady30,
			observations: []observation{
				{0, pod()},
				{10 * time.Second, pod("probe late", probe)},
			},
			now:  30 * time.Second,
			want: Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 30s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 30 * time.Second},
		},
		"once started, a missing status does not hold a recovery": {
			cfg: minReady30,
			observations: []observation{
				{0, pod("probe a", probe, "status a", status(spec.LevelInfo, t0, "ok"))},
				{10 * time.Second, pod("probe a", probe, "status a", status(spec.LevelError, at(9*time.Second), "down"))},
				{20 * time.Second, pod("probe a", probe, "status a", status(spec.LevelInfo, at(18*time.Second), "ok"), "probe b", probe)},
			},
			now:  25 * time.Second,
			want: Decision{Result: ResultWarmingUp, Reason: "error-free for 7s, less than min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: 7 * time.Second},
		},
		"the health label's key is ignored": {
			cfg:          minReady30,
			observations: []observation{{0, pod(spec.LabelHealth, "error")}},
			now:          time.Minute,
			want:         Decision{Healthy: true, Result: ResultHealthy, Reason: "error-free for 1m0s, at least min-ready-seconds (30s)", ErrorFree: true, ErrorFreeFor: time.Minute},
		},
		"unless a watchdog named health is declared": {
			cfg:          minReady30,
			observations: []observation{{0, pod("probe health", probe, spec.LabelHealth, status(spec.LevelError, t0, "sick"))}},
			want:         Decision{Result: ResultError, Reason: "watchdog health is error since 2030-01-02T03:04:05Z: sick"},
		},
		"always healthy once always-healthy-after has passed, errors or not": {
			cfg:          Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(120)},
			observations: []observation{{0, pod("status a", status(spec.LevelError, t0, "down"))}},
			now:          120 * time.Second,
			want:         Decision{Healthy: true, Result: ResultAlwaysHealthy, Reason: "always healthy: started 2m0s ago, always-healthy-after-seconds is 2m0s"},
		},
		"not always healthy a second before": {
			cfg:          Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(120)},
			observations: []observation{{0, pod("status a", status(spec.LevelError, t0, "down"))}},
			now:          119 * time.Second,
			want:         Decision{Result: ResultError, Reason: "watchdog a is error since 2030-01-02T03:04:05Z: down"},
		},
		"always healthy even when the file was never read": {
			cfg: Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(60)}, now: time.Hour,
			want: Decision{Healthy: true, Result: ResultAlwaysHealthy, Reason: "always healthy: started 1h0m0s ago, always-healthy-after-seconds is 1m0s"},
		},
		"always healthy keeps counting the error-free time": {
			cfg:          Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: d(60)},
			observations: []observation{{0, pod()}},
			now:          time.Minute,
			want:         Decision{Healthy: true, Result: ResultAlwaysHealthy, Reason: "always healthy: started 1m0s ago, always-healthy-after-seconds is 1m0s", ErrorFree: true, ErrorFreeFor: time.Minute},
		},
		"always-healthy-after 0 never gates": {
			cfg:  Config{AlwaysHealthyAfter: d(0)},
			want: Decision{Healthy: true, Result: ResultAlwaysHealthy, Reason: "always healthy: started 0s ago, always-healthy-after-seconds is 0s"},
		},
		"a long name is cut, a message is sanitized": {
			cfg:          minReady30,
			observations: []observation{{0, pod("status "+strings.Repeat("n", 100), "error/2030-01-02T03:04:05Z/line\none\x00")}},
			want:         Decision{Result: ResultError, Reason: "watchdog " + strings.Repeat("n", 63) + "... is error since 2030-01-02T03:04:05Z: line one?"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := NewHistory(t0)
			for _, o := range tc.observations {
				h = h.Observe(o.annotations, at(o.after))
			}
			got := Decide(h, tc.cfg, at(tc.now))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestObserveLeavesTheOldHistoryAlone checks that Observe is pure: a
// history kept by a caller does not change when a later one is derived.
func TestObserveLeavesTheOldHistoryAlone(t *testing.T) {
	h1 := NewHistory(t0).Observe(pod("status a", status(spec.LevelError, t0, "down"), "status b", status(spec.LevelError, t0, "down")), at(time.Second))
	blockers := append([]string(nil), h1.Blockers...)
	h2 := h1.Observe(pod("status a", status(spec.LevelInfo, at(2*time.Second), "ok"), "status b", status(spec.LevelWarning, at(2*time.Second), "slow")), at(3*time.Second))
	if !cmp.Equal(h1.Blockers, blockers) || len(h1.Watchdogs.Statuses) != 2 || !h1.ErrorFreeSince.IsZero() {
		t.Fatalf("Observe changed the history it was called on: %+v", h1)
	}
	if want := at(2 * time.Second); !h2.ErrorFreeSince.Equal(want) {
		t.Fatalf("ErrorFreeSince = %v, want %v", h2.ErrorFreeSince, want)
	}
}

func TestReadWatchdogs(t *testing.T) {
	got := ReadWatchdogs(pod(
		"probe b", probe, "probe a", "https://POD_IP:8443/w", "probe bad", "localhost:1/x",
		"status a", status(spec.LevelInfo, t0, "ok"), "status c", "nonsense", "status ", status(spec.LevelError, t0, ""),
		spec.LabelHealth, "error", "status.data.autocrane.io/models", "live/v1/x/y/z",
	))
	want := Watchdogs{
		Declared:   []string{"a", "b"},
		Statuses:   map[string]spec.WatchdogStatus{"a": {Level: spec.LevelInfo, Time: t0, Message: "ok"}},
		Unparsable: []string{"c"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadWatchdogs (-want +got):\n%s", diff)
	}
	if m := got.Missing(); !cmp.Equal(m, []string{"b"}) {
		t.Errorf("Missing = %v, want [b]", m)
	}
}
