package watchdog

import (
	"time"

	"github.com/autocrane/autocrane/spec"
)

// Result is the outcome of one probe.
type Result struct {
	// OK is true when the endpoint answered 2xx.
	OK bool
	// Level is the level a healthy answer reports: info, or warning when
	// the body says so. Ignored when OK is false.
	Level spec.Level
	// Message is short and sanitized: the HTTP status or the error. It never
	// holds response bytes.
	Message string
	// At is when the probe finished.
	At time.Time
}

// Tracker is the level state machine of one watchdog. Failures in a row
// turn it to error once they reach the unhealthy threshold; successes in a
// row turn an erroring watchdog healthy once they reach the healthy
// threshold. A healthy watchdog moves between info and warning at once.
// The zero Tracker has no level (unknown).
type Tracker struct {
	// Status is the level in effect, when it was entered, and why. Its
	// Level is empty while unknown.
	Status spec.WatchdogStatus
	// LastResult is when the last result (or the seed) was taken, for
	// freshness.
	LastResult time.Time
	failures   int
	successes  int
}

// Seed starts a tracker from a recorded status, so that a restarted manager
// resumes where the last one left off and writes nothing new.
func Seed(s spec.WatchdogStatus, now time.Time) Tracker {
	return Tracker{Status: s, LastResult: now}
}

// Observe feeds one result and reports whether the level changed.
func (t *Tracker) Observe(r Result, w spec.Watchdog) bool {
	t.LastResult = r.At
	if !r.OK {
		t.successes = 0
		t.failures++
		if t.failures >= w.UnhealthyThreshold && t.Status.Level != spec.LevelError {
			t.Status = spec.WatchdogStatus{Level: spec.LevelError, Time: r.At, Message: r.Message}
			return true
		}
		return false
	}
	t.failures = 0
	t.successes++
	level := r.Level
	if level == "" {
		level = spec.LevelInfo
	}
	if t.Status.Level == spec.LevelError && t.successes < w.HealthyThreshold {
		return false
	}
	if t.Status.Level == level {
		return false
	}
	t.Status = spec.WatchdogStatus{Level: level, Time: r.At, Message: r.Message}
	return true
}

// Fresh reports whether the tracker's level is recent enough to count at
// now: a result within three periods plus a timeout. Older levels make the
// pod's health unknown, because AutoCrane no longer knows it.
func (t *Tracker) Fresh(now time.Time, w spec.Watchdog) bool {
	if t.Status.Level == "" || t.LastResult.IsZero() {
		return false
	}
	return now.Sub(t.LastResult) <= 3*w.Period+w.Timeout
}
