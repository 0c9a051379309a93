package watchdoghealthz

import (
	"slices"
	"strings"

	"github.com/autocrane/autocrane/spec"
)

// Watchdogs is what one set of the pod's annotations says about its
// watchdogs.
type Watchdogs struct {
	// Declared are the names of the valid probe.autocrane.io/NAME keys,
	// sorted: the watchdogs the prober probes.
	Declared []string
	// Statuses are the status.autocrane.io/NAME values that parse, by NAME,
	// for declared watchdogs and others (a status may be posted for a
	// watchdog no probe declares).
	Statuses map[string]spec.WatchdogStatus
	// Unparsable are the names whose status does not parse, sorted. Such a
	// status counts as no status: unknown, not error.
	Unparsable []string
}

// ReadWatchdogs extracts the watchdogs from a pod's annotations.
// status.autocrane.io/health is the health label's key; it is read as the
// status of a watchdog named "health" only when such a watchdog is declared.
func ReadWatchdogs(annotations map[string]string) Watchdogs {
	probes, _ := spec.ParseProbes(annotations)
	w := Watchdogs{Statuses: map[string]spec.WatchdogStatus{}}
	for _, p := range probes {
		w.Declared = append(w.Declared, p.Name)
	}
	for key, v := range annotations {
		name, ok := strings.CutPrefix(key, spec.PrefixWatchdogStatus)
		if !ok || name == "" || key == spec.LabelHealth && !slices.Contains(w.Declared, name) {
			continue
		}
		st, err := spec.ParseWatchdogStatus(v)
		if err != nil {
			w.Unparsable = append(w.Unparsable, name)
			continue
		}
		w.Statuses[name] = st
	}
	slices.Sort(w.Unparsable)
	return w
}

// Errors are the names of the watchdogs whose level is error, sorted.
func (w Watchdogs) Errors() []string {
	var names []string
	for name, st := range w.Statuses {
		if st.Level == spec.LevelError {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Missing are the declared watchdogs without a valid status, sorted.
func (w Watchdogs) Missing() []string {
	var names []string
	for _, name := range w.Declared {
		if _, ok := w.Statuses[name]; !ok {
			names = append(names, name)
		}
	}
	return names
}
