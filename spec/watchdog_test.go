package spec

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultWatchdog(t *testing.T) {
	want := Watchdog{
		Period:             10 * time.Second,
		Timeout:            2 * time.Second,
		UnhealthyThreshold: 3,
		HealthyThreshold:   2,
		Evict:              true,
		EvictAfter:         30 * time.Second,
		MaxInFlight:        1,
	}
	if diff := cmp.Diff(want, DefaultWatchdog()); diff != "" {
		t.Errorf("DefaultWatchdog() (-want +got):\n%s", diff)
	}
	for _, annotations := range []map[string]string{nil, {}, {"unrelated.example.com/x": "1", PrefixProbe + "web": "POD_IP:80/x"}} {
		got, errs := ParseWatchdog(annotations)
		if len(errs) > 0 {
			t.Errorf("ParseWatchdog(%v) errors: %v", annotations, messages(errs))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ParseWatchdog(%v) (-want +got):\n%s", annotations, diff)
		}
	}
}

func TestParseWatchdog(t *testing.T) {
	pre := func(key string) string { return "metadata.annotations[" + key + "]: " }
	number := func(key, v string, lo, hi int) string {
		return pre(key) + `Invalid value: "` + v + `": must be a whole number from ` + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)
	}
	longSecond := strings.Repeat("0", 31) + "1s"
	const evictAfterDetail = ": must be a duration from 0s to 24h, such as 30s or 2m"

	tests := []struct {
		name        string
		annotations map[string]string
		// edit turns the defaults into the wanted tuning.
		edit func(w *Watchdog)
		errs []string
	}{
		{name: "period lowest", annotations: map[string]string{KeyWatchdogPeriodSeconds: "1", KeyWatchdogTimeoutSeconds: "1"},
			edit: func(w *Watchdog) { w.Period, w.Timeout = time.Second, time.Second }},
		{name: "period highest", annotations: map[string]string{KeyWatchdogPeriodSeconds: "3600"},
			edit: func(w *Watchdog) { w.Period = time.Hour }},
		// The default timeout (2 s) shrinks to a shorter period without
		// an error: the user set nothing wrong.
		{name: "period below default timeout", annotations: map[string]string{KeyWatchdogPeriodSeconds: "1"},
			edit: func(w *Watchdog) { w.Period, w.Timeout = time.Second, time.Second }},
		{name: "period zero", annotations: map[string]string{KeyWatchdogPeriodSeconds: "0"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "0", 1, 3600)}},
		{name: "period too high", annotations: map[string]string{KeyWatchdogPeriodSeconds: "3601"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "3601", 1, 3600)}},
		{name: "period negative", annotations: map[string]string{KeyWatchdogPeriodSeconds: "-5"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "-5", 1, 3600)}},
		{name: "period with plus", annotations: map[string]string{KeyWatchdogPeriodSeconds: "+5"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "+5", 1, 3600)}},
		{name: "period leading zero", annotations: map[string]string{KeyWatchdogPeriodSeconds: "05"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "05", 1, 3600)}},
		{name: "period with unit", annotations: map[string]string{KeyWatchdogPeriodSeconds: "5s"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "5s", 1, 3600)}},
		{name: "period fraction", annotations: map[string]string{KeyWatchdogPeriodSeconds: "1.5"},
			errs: []string{number(KeyWatchdogPeriodSeconds, "1.5", 1, 3600)}},
		{name: "period empty", annotations: map[string]string{KeyWatchdogPeriodSeconds: ""},
			errs: []string{number(KeyWatchdogPeriodSeconds, "", 1, 3600)}},
		{name: "timeout equal to period", annotations: map[string]string{KeyWatchdogTimeoutSeconds: "10"},
			edit: func(w *Watchdog) { w.Timeout = 10 * time.Second }},
		{name: "timeout above default period", annotations: map[string]string{KeyWatchdogTimeoutSeconds: "11"},
			edit: func(w *Watchdog) { w.Timeout = 10 * time.Second },
			errs: []string{pre(KeyWatchdogTimeoutSeconds) + "Invalid value: 11: must not exceed the period (10 s), or probes of one watchdog would overlap"}},
		{name: "timeout above set period", annotations: map[string]string{KeyWatchdogPeriodSeconds: "4", KeyWatchdogTimeoutSeconds: "5"},
			edit: func(w *Watchdog) { w.Period, w.Timeout = 4*time.Second, 4*time.Second },
			errs: []string{pre(KeyWatchdogTimeoutSeconds) + "Invalid value: 5: must not exceed the period (4 s), or probes of one watchdog would overlap"}},
		{name: "timeout zero", annotations: map[string]string{KeyWatchdogTimeoutSeconds: "0"},
			errs: []string{number(KeyWatchdogTimeoutSeconds, "0", 1, 3600)}},
		// An invalid timeout is reported once, as invalid, even when the
		// default it keeps is longer than the period.
		{name: "invalid timeout with short period", annotations: map[string]string{KeyWatchdogPeriodSeconds: "1", KeyWatchdogTimeoutSeconds: "x"},
			edit: func(w *Watchdog) { w.Period, w.Timeout = time.Second, time.Second },
			errs: []string{number(KeyWatchdogTimeoutSeconds, "x", 1, 3600)}},
		{name: "unhealthy threshold bounds", annotations: map[string]string{KeyWatchdogUnhealthyThreshold: "1", KeyWatchdogHealthyThreshold: "100"},
			edit: func(w *Watchdog) { w.UnhealthyThreshold, w.HealthyThreshold = 1, 100 }},
		{name: "unhealthy threshold zero", annotations: map[string]string{KeyWatchdogUnhealthyThreshold: "0"},
			errs: []string{number(KeyWatchdogUnhealthyThreshold, "0", 1, 100)}},
		{name: "healthy threshold too high", annotations: map[string]string{KeyWatchdogHealthyThreshold: "101"},
			errs: []string{number(KeyWatchdogHealthyThreshold, "101", 1, 100)}},
		{name: "max in flight highest", annotations: map[string]string{KeyWatchdogMaxInFlight: "1000"},
			edit: func(w *Watchdog) { w.MaxInFlight = 1000 }},
		{name: "max in flight too high", annotations: map[string]string{KeyWatchdogMaxInFlight: "1001"},
			errs: []string{number(KeyWatchdogMaxInFlight, "1001", 1, 1000)}},
		{name: "evict false", annotations: map[string]string{KeyWatchdogEvict: "false"},
			edit: func(w *Watchdog) { w.Evict = false }},
		{name: "evict true", annotations: map[string]string{KeyWatchdogEvict: "true"}},
		{name: "evict capitalised", annotations: map[string]string{KeyWatchdogEvict: "False"},
			errs: []string{pre(KeyWatchdogEvict) + `Unsupported value: "False": supported values: "true", "false"`}},
		{name: "evict after zero", annotations: map[string]string{KeyWatchdogEvictAfter: "0s"},
			edit: func(w *Watchdog) { w.EvictAfter = 0 }},
		{name: "evict after minutes", annotations: map[string]string{KeyWatchdogEvictAfter: "2m"},
			edit: func(w *Watchdog) { w.EvictAfter = 2 * time.Minute }},
		{name: "evict after highest", annotations: map[string]string{KeyWatchdogEvictAfter: "24h"},
			edit: func(w *Watchdog) { w.EvictAfter = 24 * time.Hour }},
		{name: "evict after too long", annotations: map[string]string{KeyWatchdogEvictAfter: "24h1s"},
			errs: []string{pre(KeyWatchdogEvictAfter) + `Invalid value: "24h1s"` + evictAfterDetail}},
		{name: "evict after negative", annotations: map[string]string{KeyWatchdogEvictAfter: "-1s"},
			errs: []string{pre(KeyWatchdogEvictAfter) + `Invalid value: "-1s"` + evictAfterDetail}},
		{name: "evict after without unit", annotations: map[string]string{KeyWatchdogEvictAfter: "30"},
			errs: []string{pre(KeyWatchdogEvictAfter) + `Invalid value: "30"` + evictAfterDetail}},
		// A duration spelled in more than 32 bytes is refused even when it is in range.
		{name: "evict after spelled long", annotations: map[string]string{KeyWatchdogEvictAfter: longSecond},
			errs: []string{pre(KeyWatchdogEvictAfter) + `Invalid value: "` + longSecond + `"` + evictAfterDetail}},
		{name: "evict after spelled in 32 bytes", annotations: map[string]string{KeyWatchdogEvictAfter: longSecond[1:]},
			edit: func(w *Watchdog) { w.EvictAfter = time.Second }},
		{name: "errors sorted by key, good keys kept",
			annotations: map[string]string{
				KeyWatchdogUnhealthyThreshold: "many",
				KeyWatchdogEvict:              "no",
				KeyWatchdogPeriodSeconds:      "30",
				KeyWatchdogHealthyThreshold:   "5",
			},
			edit: func(w *Watchdog) { w.Period, w.HealthyThreshold = 30*time.Second, 5 },
			errs: []string{
				pre(KeyWatchdogEvict) + `Unsupported value: "no": supported values: "true", "false"`,
				number(KeyWatchdogUnhealthyThreshold, "many", 1, 100),
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := DefaultWatchdog()
			if tt.edit != nil {
				tt.edit(&want)
			}
			got, errs := ParseWatchdog(tt.annotations)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("tuning (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errs, messages(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseWatchdog checks that whatever the keys say, the tuning the
// prober acts on stays within the bounds, the timeout never exceeds the
// period, each error names a watchdog key, and a key parsed without error
// is used exactly.
func FuzzParseWatchdog(f *testing.F) {
	f.Add("10", "2", "3", "2", "true", "30s", "1")
	f.Add("1", "", "1", "100", "false", "0s", "1000")
	f.Add("3600", "3601", "0", "101", "False", "24h1s", "0")
	f.Add("05", "+2", "-1", "1e2", "", "-1s", "1_000")
	f.Add("4", "5", " 3", "2 ", "true\n", "9223372036854775807ns", "99999999999999999999")
	f.Add(strings.Repeat("9", 1<<12), "\x00", "３", "２", "yes", "1h60m", "")
	f.Fuzz(func(t *testing.T, period, timeout, unhealthy, healthy, evict, evictAfter, maxInFlight string) {
		annotations := map[string]string{}
		for key, v := range map[string]string{
			KeyWatchdogPeriodSeconds:      period,
			KeyWatchdogTimeoutSeconds:     timeout,
			KeyWatchdogUnhealthyThreshold: unhealthy,
			KeyWatchdogHealthyThreshold:   healthy,
			KeyWatchdogEvict:              evict,
			KeyWatchdogEvictAfter:         evictAfter,
			KeyWatchdogMaxInFlight:        maxInFlight,
		} {
			// An empty fuzz value leaves the key out.
			if v != "" {
				annotations[key] = v
			}
		}
		w, errs := ParseWatchdog(annotations)
		checkErrors(t, errs, len("metadata.annotations[]")+len(KeyWatchdogUnhealthyThreshold), 0)
		bad := map[string]bool{}
		for _, e := range errs {
			key := strings.TrimSuffix(strings.TrimPrefix(e.Field, "metadata.annotations["), "]")
			if !strings.HasPrefix(key, "watchdog.autocrane.io/") {
				t.Errorf("error on %q, not a watchdog key: %v", e.Field, e)
			}
			bad[key] = true
		}
		switch {
		case w.Period < time.Second || w.Period > MaxWatchdogPeriodSeconds*time.Second || w.Period%time.Second != 0:
			t.Errorf("period %s out of bounds", w.Period)
		case w.Timeout < time.Second || w.Timeout > w.Period || w.Timeout%time.Second != 0:
			t.Errorf("timeout %s out of bounds (period %s)", w.Timeout, w.Period)
		case w.UnhealthyThreshold < 1 || w.UnhealthyThreshold > MaxWatchdogThreshold:
			t.Errorf("unhealthy threshold %d out of bounds", w.UnhealthyThreshold)
		case w.HealthyThreshold < 1 || w.HealthyThreshold > MaxWatchdogThreshold:
			t.Errorf("healthy threshold %d out of bounds", w.HealthyThreshold)
		case w.MaxInFlight < 1 || w.MaxInFlight > MaxWatchdogMaxInFlight:
			t.Errorf("max in flight %d out of bounds", w.MaxInFlight)
		case w.EvictAfter < 0 || w.EvictAfter > MaxWatchdogEvictAfter:
			t.Errorf("evict after %s out of bounds", w.EvictAfter)
		}
		if v, ok := annotations[KeyWatchdogPeriodSeconds]; ok && !bad[KeyWatchdogPeriodSeconds] {
			if got := strconv.Itoa(int(w.Period / time.Second)); got != v {
				t.Errorf("period %q accepted but parsed as %s", v, got)
			}
		}
		if v, ok := annotations[KeyWatchdogTimeoutSeconds]; ok && !bad[KeyWatchdogTimeoutSeconds] {
			if got := strconv.Itoa(int(w.Timeout / time.Second)); got != v {
				t.Errorf("timeout %q accepted but parsed as %s", v, got)
			}
		}
		if v, ok := annotations[KeyWatchdogEvict]; ok && !bad[KeyWatchdogEvict] && w.Evict != (v == "true") {
			t.Errorf("evict %q accepted but parsed as %v", v, w.Evict)
		}
		if _, ok := annotations[KeyWatchdogEvict]; !ok && !w.Evict {
			t.Errorf("evict off without the key")
		}
	})
}
