package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Watchdog tuning keys, set on pods (usually on a pod template).
const (
	// KeyWatchdogPeriodSeconds is how often each watchdog is probed.
	KeyWatchdogPeriodSeconds = "watchdog.autocrane.io/period-seconds"
	// KeyWatchdogTimeoutSeconds bounds one probe, from dial to last byte.
	KeyWatchdogTimeoutSeconds = "watchdog.autocrane.io/timeout-seconds"
	// KeyWatchdogUnhealthyThreshold is how many failures in a row turn a
	// watchdog to error.
	KeyWatchdogUnhealthyThreshold = "watchdog.autocrane.io/unhealthy-threshold"
	// KeyWatchdogHealthyThreshold is how many successes in a row turn an
	// erroring watchdog healthy again.
	KeyWatchdogHealthyThreshold = "watchdog.autocrane.io/healthy-threshold"
	// KeyWatchdogEvict is "false" to opt a pod out of eviction.
	KeyWatchdogEvict = "watchdog.autocrane.io/evict"
	// KeyWatchdogEvictAfter is how long a pod stays in error before it is
	// evicted, a duration such as 30s or 2m.
	KeyWatchdogEvictAfter = "watchdog.autocrane.io/evict-after"
	// KeyWatchdogMaxInFlight caps the evictions per owner whose
	// replacements are not Ready yet.
	KeyWatchdogMaxInFlight = "watchdog.autocrane.io/max-in-flight"
)

// Watchdog defaults.
const (
	DefaultWatchdogPeriod             = 10 * time.Second
	DefaultWatchdogTimeout            = 2 * time.Second
	DefaultWatchdogUnhealthyThreshold = 3
	DefaultWatchdogHealthyThreshold   = 2
	DefaultWatchdogEvictAfter         = 30 * time.Second
	DefaultWatchdogMaxInFlight        = 1
)

// Bounds of the watchdog keys.
const (
	MaxWatchdogPeriodSeconds = 3600
	MaxWatchdogThreshold     = 100
	MaxWatchdogMaxInFlight   = 1000
	MaxWatchdogEvictAfter    = 24 * time.Hour
)

// Watchdog is how a pod's watchdogs are probed and how it is repaired.
type Watchdog struct {
	Period             time.Duration
	Timeout            time.Duration
	UnhealthyThreshold int
	HealthyThreshold   int
	// Evict is false when the pod opted out of eviction.
	Evict       bool
	EvictAfter  time.Duration
	MaxInFlight int
}

// DefaultWatchdog is the tuning of a pod that sets no watchdog key.
func DefaultWatchdog() Watchdog {
	return Watchdog{
		Period:             DefaultWatchdogPeriod,
		Timeout:            DefaultWatchdogTimeout,
		UnhealthyThreshold: DefaultWatchdogUnhealthyThreshold,
		HealthyThreshold:   DefaultWatchdogHealthyThreshold,
		Evict:              true,
		EvictAfter:         DefaultWatchdogEvictAfter,
		MaxInFlight:        DefaultWatchdogMaxInFlight,
	}
}

// ParseWatchdog parses the watchdog.autocrane.io/* keys of a pod. A key that
// is missing or invalid keeps its default, so a caller that must act (the
// prober) acts on safe values while the errors say what was wrong.
func ParseWatchdog(annotations map[string]string) (Watchdog, field.ErrorList) {
	w := DefaultWatchdog()
	var errs field.ErrorList
	// intKey reports whether the key was set to a valid value.
	intKey := func(key string, lo, hi int, dst *int) bool {
		v, ok := annotations[key]
		if !ok {
			return false
		}
		n, err := parseBoundedInt(v, lo, hi, AnnotationPath(key))
		if err != nil {
			errs = append(errs, err)
			return false
		}
		*dst = n
		return true
	}
	period, timeout := int(w.Period/time.Second), int(w.Timeout/time.Second)
	intKey(KeyWatchdogPeriodSeconds, 1, MaxWatchdogPeriodSeconds, &period)
	timeoutSet := intKey(KeyWatchdogTimeoutSeconds, 1, MaxWatchdogPeriodSeconds, &timeout)
	intKey(KeyWatchdogUnhealthyThreshold, 1, MaxWatchdogThreshold, &w.UnhealthyThreshold)
	intKey(KeyWatchdogHealthyThreshold, 1, MaxWatchdogThreshold, &w.HealthyThreshold)
	intKey(KeyWatchdogMaxInFlight, 1, MaxWatchdogMaxInFlight, &w.MaxInFlight)
	if timeout > period {
		// Only a timeout the user set is wrong: the default timeout (2 s)
		// silently shrinks to a shorter period (1 s).
		if timeoutSet {
			errs = append(errs, field.Invalid(AnnotationPath(KeyWatchdogTimeoutSeconds), timeout,
				fmt.Sprintf("must not exceed the period (%d s), or probes of one watchdog would overlap", period)))
		}
		timeout = period
	}
	w.Period, w.Timeout = time.Duration(period)*time.Second, time.Duration(timeout)*time.Second
	if v, ok := annotations[KeyWatchdogEvict]; ok {
		switch v {
		case "true":
		case "false":
			w.Evict = false
		default:
			errs = append(errs, field.NotSupported(AnnotationPath(KeyWatchdogEvict), shown(v), []string{"true", "false"}))
		}
	}
	if v, ok := annotations[KeyWatchdogEvictAfter]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > MaxWatchdogEvictAfter || len(v) > 32 {
			errs = append(errs, invalid(AnnotationPath(KeyWatchdogEvictAfter), v, "must be a duration from 0s to 24h, such as 30s or 2m"))
		} else {
			w.EvictAfter = d
		}
	}
	SortErrors(errs)
	return w, errs
}

// parseBoundedInt parses a decimal integer from lo to hi, with no sign and
// no leading zeros, so each number has exactly one spelling.
func parseBoundedInt(v string, lo, hi int, p *field.Path) (int, *field.Error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi || strings.HasPrefix(v, "+") || (len(v) > 1 && v[0] == '0') {
		return 0, invalid(p, v, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
	}
	return n, nil
}
