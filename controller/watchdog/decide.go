package watchdog

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// PodState is what Decide reads of one pod.
type PodState struct {
	// Annotations and Labels are the pod's, as last seen.
	Annotations map[string]string
	Labels      map[string]string
	// Probes are the pod's declared watchdogs, by name.
	Probes []spec.Probe
	// Trackers hold each probed watchdog's level, by name.
	Trackers map[string]*Tracker
	// Dropped are watchdogs whose probe annotation was removed while the
	// prober tracked them: their status keys go too.
	Dropped []string
	// Watchdog is the pod's tuning.
	Watchdog spec.Watchdog
}

// Patch is a change to a pod's AutoCrane keys: a value sets a key, nil
// removes it. No other key is touched.
type Patch struct {
	Annotations map[string]*string
	Labels      map[string]*string
}

// Empty reports whether the patch changes nothing.
func (p Patch) Empty() bool { return len(p.Annotations) == 0 && len(p.Labels) == 0 }

// MergePatch encodes the patch as a JSON merge patch of those keys alone.
func (p Patch) MergePatch() ([]byte, error) {
	meta := map[string]map[string]*string{}
	if len(p.Annotations) > 0 {
		meta["annotations"] = p.Annotations
	}
	if len(p.Labels) > 0 {
		meta["labels"] = p.Labels
	}
	b, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return nil, fmt.Errorf("encode patch: %w", err)
	}
	return b, nil
}

// Decide returns the patch that makes the pod's status keys and health
// label match its trackers at now. It returns an empty patch when they
// already match: steady state writes nothing.
//
// Statuses of watchdogs without a probe annotation are written by others
// (autocrane watchdog post); Decide leaves them alone but counts their
// levels in the health label.
func Decide(s PodState, now time.Time) Patch {
	p := Patch{Annotations: map[string]*string{}, Labels: map[string]*string{}}
	probed := map[string]bool{}
	var levels []spec.Level
	for _, pr := range s.Probes {
		probed[pr.Name] = true
		t := s.Trackers[pr.Name]
		if t == nil || t.Status.Level == "" {
			continue
		}
		key := spec.PrefixWatchdogStatus + pr.Name
		if want := t.Status.String(); s.Annotations[key] != want {
			p.Annotations[key] = &want
		}
		if t.Fresh(now, s.Watchdog) {
			levels = append(levels, t.Status.Level)
		}
	}
	for _, name := range s.Dropped {
		key := spec.PrefixWatchdogStatus + name
		if _, ok := s.Annotations[key]; ok && !probed[name] {
			p.Annotations[key] = nil
		}
	}
	// The status of a dropped watchdog is going: it neither counts nor
	// keeps the pod watched, or the last dropped probe would leave the
	// label at unknown for one more write.
	posted := 0
	for name, st := range PostedStatuses(s.Annotations, probed) {
		if !slices.Contains(s.Dropped, name) {
			levels = append(levels, st.Level)
			posted++
		}
	}

	current, hasLabel := s.Labels[spec.LabelHealth]
	watched := len(s.Probes) > 0 || posted > 0
	switch want := spec.Health(levels); {
	case watched && (!hasLabel || current != want):
		p.Labels[spec.LabelHealth] = &want
	case !watched && hasLabel:
		p.Labels[spec.LabelHealth] = nil
	}
	return p
}

// PostedStatuses are the parsable status.autocrane.io/NAME annotations of
// watchdogs that are not probed: those that agents post.
func PostedStatuses(annotations map[string]string, probed map[string]bool) map[string]spec.WatchdogStatus {
	out := map[string]spec.WatchdogStatus{}
	for _, key := range slices.Sorted(maps.Keys(annotations)) {
		name, ok := strings.CutPrefix(key, spec.PrefixWatchdogStatus)
		if !ok || probed[name] {
			continue
		}
		if st, err := spec.ParseWatchdogStatus(annotations[key]); err == nil {
			out[name] = st
		}
	}
	return out
}
