package watchdoghealthz

import (
	"fmt"
	"strings"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// Config is what the pod asks of the canary.
type Config struct {
	// MinReady is how long the pod must be error-free before /healthz
	// answers 200 (healthz.autocrane.io/min-ready-seconds).
	MinReady time.Duration
	// AlwaysHealthyAfter, when not nil, is how long after the process
	// started /healthz answers 200 whatever the watchdogs say
	// (healthz.autocrane.io/always-healthy-after-seconds). Nil: never.
	AlwaysHealthyAfter *time.Duration
}

// Result names why /healthz answered as it did; it is the metric's label.
type Result string

// The results, in the order Decide checks them.
const (
	// ResultAlwaysHealthy: AlwaysHealthyAfter has passed since the start.
	ResultAlwaysHealthy Result = "always_healthy"
	// ResultNotRead: the annotations file was not read yet.
	ResultNotRead Result = "not_read"
	// ResultError: a watchdog is in error.
	ResultError Result = "error"
	// ResultWaiting: a declared watchdog has no valid status yet.
	ResultWaiting Result = "waiting"
	// ResultWarmingUp: error-free, but not for MinReady yet.
	ResultWarmingUp Result = "warming_up"
	// ResultHealthy: error-free for at least MinReady.
	ResultHealthy Result = "healthy"
)

// Results lists every Result.
var Results = []Result{ResultAlwaysHealthy, ResultNotRead, ResultError, ResultWaiting, ResultWarmingUp, ResultHealthy}

// Decision is /healthz's answer.
type Decision struct {
	Healthy bool
	Result  Result
	// Reason says why, in one short line.
	Reason string
	// ErrorFree is true when the error-free clock runs; ErrorFreeFor is
	// then how long it has run.
	ErrorFree    bool
	ErrorFreeFor time.Duration
}

// maxNames bounds the watchdog names a reason lists.
const maxNames = 3

// Decide answers /healthz at now.
func Decide(h History, cfg Config, now time.Time) Decision {
	var d Decision
	if !h.ErrorFreeSince.IsZero() {
		d.ErrorFree, d.ErrorFreeFor = true, max(now.Sub(h.ErrorFreeSince), 0)
	}
	if a := cfg.AlwaysHealthyAfter; a != nil && now.Sub(h.Started) >= *a {
		d.Healthy, d.Result = true, ResultAlwaysHealthy
		d.Reason = fmt.Sprintf("always healthy: started %s ago, always-healthy-after-seconds is %s", seconds(now.Sub(h.Started)), seconds(*a))
		return d
	}
	if !h.Read {
		d.Result, d.Reason = ResultNotRead, "the annotations file was not read yet"
		return d
	}
	if errs := h.Watchdogs.Errors(); len(errs) > 0 {
		st := h.Watchdogs.Statuses[errs[0]]
		d.Result = ResultError
		d.Reason = fmt.Sprintf("watchdog %s is error since %s", shownName(errs[0]), st.Time.UTC().Format(time.RFC3339))
		if msg := spec.SanitizeMessage(st.Message); msg != "" {
			d.Reason += ": " + msg
		}
		if len(errs) > 1 {
			d.Reason += fmt.Sprintf(" (and %d more in error: %s)", len(errs)-1, names(errs[1:]))
		}
		return d
	}
	if !d.ErrorFree {
		d.Result = ResultWaiting
		d.Reason = "waiting for a valid status of watchdog " + names(h.Blockers)
		return d
	}
	if d.ErrorFreeFor < cfg.MinReady {
		d.Result = ResultWarmingUp
		d.Reason = fmt.Sprintf("error-free for %s, less than min-ready-seconds (%s)", seconds(d.ErrorFreeFor), seconds(cfg.MinReady))
		return d
	}
	d.Healthy, d.Result = true, ResultHealthy
	d.Reason = fmt.Sprintf("error-free for %s, at least min-ready-seconds (%s)", seconds(d.ErrorFreeFor), seconds(cfg.MinReady))
	return d
}

// seconds shows a duration in whole seconds, as Go writes durations.
func seconds(d time.Duration) string { return d.Truncate(time.Second).String() }

// names lists at most maxNames watchdog names.
func names(list []string) string {
	shown := make([]string, 0, maxNames)
	for i, n := range list {
		if i == maxNames {
			return strings.Join(shown, ", ") + fmt.Sprintf(" and %d more", len(list)-maxNames)
		}
		shown = append(shown, shownName(n))
	}
	return strings.Join(shown, ", ")
}

// shownName bounds a name taken from an annotation key: the API server
// allows 63 bytes, but the file is not trusted to be that tidy.
func shownName(n string) string {
	n = spec.SanitizeMessage(n)
	if len(n) > 63 {
		return n[:63] + "..."
	}
	return n
}
