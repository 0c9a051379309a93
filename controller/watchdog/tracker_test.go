package watchdog

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

// step is one probe result fed to a tracker, and whether it must change
// the tracker's level, and to what.
type step struct {
	result string // "ok", "warn", "fail"
	change bool
	level  spec.Level
}

func ok(change bool, level spec.Level) step   { return step{"ok", change, level} }
func warn(change bool, level spec.Level) step { return step{"warn", change, level} }
func fail(change bool, level spec.Level) step { return step{"fail", change, level} }

// result is the Result of a step kind, finished at at.
func result(kind string, at time.Time) Result {
	switch kind {
	case "ok":
		return Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200", At: at}
	case "warn":
		return Result{OK: true, Level: spec.LevelWarning, Message: "HTTP 200, level warning", At: at}
	}
	return Result{Message: "HTTP 500 at " + at.Format(time.RFC3339), At: at}
}

func tuning(unhealthy, healthy int) spec.Watchdog {
	w := spec.DefaultWatchdog()
	w.UnhealthyThreshold, w.HealthyThreshold = unhealthy, healthy
	return w
}

func TestTrackerTransitions(t *testing.T) {
	const (
		none    = spec.Level("")
		info    = spec.LevelInfo
		warning = spec.LevelWarning
		errorL  = spec.LevelError
	)
	tests := []struct {
		name  string
		w     spec.Watchdog
		seed  *spec.WatchdogStatus
		steps []step
	}{
		{name: "first success from unknown is info at once, whatever the healthy threshold", w: tuning(3, 5),
			steps: []step{ok(true, info), ok(false, info)}},
		{name: "first warning from unknown is warning at once", w: tuning(3, 5),
			steps: []step{warn(true, warning)}},
		{name: "unknown turns error after exactly N failures", w: tuning(3, 2),
			steps: []step{fail(false, none), fail(false, none), fail(true, errorL), fail(false, errorL)}},
		{name: "unhealthy threshold 1", w: tuning(1, 1),
			steps: []step{ok(true, info), fail(true, errorL), ok(true, info)}},
		{name: "info turns error after N failures, not N-1", w: tuning(3, 2),
			steps: []step{ok(true, info), fail(false, info), fail(false, info), fail(true, errorL)}},
		{name: "unhealthy threshold 5", w: tuning(5, 2),
			steps: []step{ok(true, info), fail(false, info), fail(false, info), fail(false, info), fail(false, info), fail(true, errorL)}},
		{name: "a success in between resets the failures", w: tuning(3, 2),
			steps: []step{ok(true, info), fail(false, info), fail(false, info), ok(false, info), fail(false, info), fail(false, info), fail(true, errorL)}},
		{name: "a warning in between resets the failures", w: tuning(3, 2),
			steps: []step{ok(true, info), fail(false, info), fail(false, info), warn(true, warning), fail(false, warning), fail(false, warning), fail(true, errorL)}},
		{name: "error recovers after exactly the healthy threshold", w: tuning(1, 3),
			steps: []step{fail(true, errorL), ok(false, errorL), ok(false, errorL), ok(true, info), ok(false, info)}},
		{name: "a failure in between resets the successes", w: tuning(1, 2),
			steps: []step{fail(true, errorL), ok(false, errorL), fail(false, errorL), ok(false, errorL), ok(true, info)}},
		{name: "error recovers to warning", w: tuning(1, 2),
			steps: []step{fail(true, errorL), warn(false, errorL), warn(true, warning)}},
		{name: "error recovers to the level of the last success", w: tuning(1, 2),
			steps: []step{fail(true, errorL), warn(false, errorL), ok(true, info)}},
		{name: "info and warning switch at once", w: tuning(3, 5),
			steps: []step{ok(true, info), warn(true, warning), warn(false, warning), ok(true, info), warn(true, warning)}},
		{name: "seeded info, same results: nothing new", w: tuning(3, 2),
			seed:  &spec.WatchdogStatus{Level: info, Message: "HTTP 200"},
			steps: []step{ok(false, info), ok(false, info)}},
		{name: "seeded warning, same results: nothing new", w: tuning(3, 2),
			seed:  &spec.WatchdogStatus{Level: warning, Message: "HTTP 200, level warning"},
			steps: []step{warn(false, warning)}},
		{name: "seeded error, more failures: nothing new", w: tuning(3, 2),
			seed:  &spec.WatchdogStatus{Level: errorL, Message: "HTTP 500"},
			steps: []step{fail(false, errorL), fail(false, errorL), fail(false, errorL), fail(false, errorL)}},
		{name: "seeded error needs the healthy threshold", w: tuning(3, 2),
			seed:  &spec.WatchdogStatus{Level: errorL, Message: "HTTP 500"},
			steps: []step{ok(false, errorL), ok(true, info)}},
		{name: "seeded info counts failures afresh", w: tuning(2, 2),
			seed:  &spec.WatchdogStatus{Level: info, Message: "HTTP 200"},
			steps: []step{fail(false, info), fail(true, errorL)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
			var tr Tracker
			if tt.seed != nil {
				seed := *tt.seed
				seed.Time = clk.Now().Add(-time.Hour)
				tr = Seed(seed, clk.Now())
			}
			for i, s := range tt.steps {
				clk.SetTime(clk.Now().Add(time.Second))
				before := tr.Status
				r := result(s.result, clk.Now())
				changed := tr.Observe(r, tt.w)
				if changed != s.change || tr.Status.Level != s.level {
					t.Fatalf("step %d (%s): changed %v, level %q; want changed %v, level %q", i, s.result, changed, tr.Status.Level, s.change, s.level)
				}
				if !tr.LastResult.Equal(r.At) {
					t.Errorf("step %d: LastResult %v, want %v", i, tr.LastResult, r.At)
				}
				switch {
				case changed && (!tr.Status.Time.Equal(r.At) || tr.Status.Message != r.Message):
					t.Errorf("step %d: status %+v after a transition, want the time and message of %+v", i, tr.Status, r)
				case !changed && tr.Status != before:
					t.Errorf("step %d: status changed from %+v to %+v without a transition", i, before, tr.Status)
				}
			}
		})
	}
}

func TestTrackerTreatsALevellessSuccessAsInfo(t *testing.T) {
	var tr Tracker
	if !tr.Observe(Result{OK: true, At: time.Unix(1, 0)}, spec.DefaultWatchdog()) || tr.Status.Level != spec.LevelInfo {
		t.Fatalf("status %+v, want info", tr.Status)
	}
}

func TestTrackerFresh(t *testing.T) {
	w := spec.DefaultWatchdog()
	w.Period, w.Timeout = 10*time.Second, 2*time.Second
	clk := clocktesting.NewFakePassiveClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	start := clk.Now()

	var unknown Tracker
	if unknown.Fresh(start, w) {
		t.Error("the zero tracker is fresh")
	}
	failing := Tracker{}
	failing.Observe(Result{Message: "HTTP 500", At: start}, w)
	if failing.Fresh(start, w) {
		t.Error("a tracker without a level is fresh")
	}
	if (&Tracker{Status: spec.WatchdogStatus{Level: spec.LevelInfo}}).Fresh(start, w) {
		t.Error("a tracker without a result time is fresh")
	}

	seeded := Seed(spec.WatchdogStatus{Level: spec.LevelError, Time: start.Add(-24 * time.Hour)}, start)
	observed := Tracker{}
	observed.Observe(Result{OK: true, At: start}, w)
	for name, tr := range map[string]Tracker{"seeded": seeded, "observed": observed} {
		for _, tc := range []struct {
			after time.Duration
			fresh bool
		}{
			{0, true},
			{10 * time.Second, true},
			{3*10*time.Second + 2*time.Second, true}, // three periods plus a timeout
			{3*10*time.Second + 2*time.Second + time.Nanosecond, false},
			{time.Hour, false},
		} {
			clk.SetTime(start.Add(tc.after))
			if got := tr.Fresh(clk.Now(), w); got != tc.fresh {
				t.Errorf("%s tracker %s after its last result: fresh %v, want %v", name, tc.after, got, tc.fresh)
			}
		}
	}

	// A new result makes a stale tracker fresh again, failures included:
	// the prober still knows the level.
	clk.SetTime(start.Add(time.Hour))
	observed.Observe(Result{Message: "HTTP 500", At: clk.Now()}, w)
	if !observed.Fresh(clk.Now(), w) || observed.Status.Level != spec.LevelInfo {
		t.Errorf("after a failure below the threshold: fresh %v, level %q; want fresh info", observed.Fresh(clk.Now(), w), observed.Status.Level)
	}
}
