package watchdog

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

const (
	keyWeb   = spec.PrefixWatchdogStatus + "web"
	keyDB    = spec.PrefixWatchdogStatus + "db"
	keyAgent = spec.PrefixWatchdogStatus + "agent"
)

var decideNow = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func probe(name string) spec.Probe {
	return spec.Probe{Name: name, Scheme: "http", Port: 8080, Path: "/healthz"}
}

// tracker is a tracker at level, entered at entered, whose last result
// was ago before decideNow.
func tracker(level spec.Level, entered time.Time, ago time.Duration) *Tracker {
	return &Tracker{
		Status:     spec.WatchdogStatus{Level: level, Time: entered, Message: "HTTP 200"},
		LastResult: decideNow.Add(-ago),
	}
}

func status(level spec.Level, entered time.Time) string {
	return spec.WatchdogStatus{Level: level, Time: entered, Message: "HTTP 200"}.String()
}

func ptr(s string) *string { return &s }

func TestDecide(t *testing.T) {
	earlier := decideNow.Add(-time.Hour)
	later := decideNow.Add(-time.Second)
	w := spec.DefaultWatchdog()
	stale := 3*w.Period + w.Timeout + time.Second
	other := map[string]string{"app.example.com/version": "3"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := maps.Clone(m)
		if out == nil {
			out = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	health := func(v string) map[string]string { return map[string]string{spec.LabelHealth: v} }

	tests := []struct {
		name  string
		state PodState
		want  Patch
	}{
		{
			name: "steady state writes nothing",
			state: PodState{
				Annotations: with(other, keyWeb, status(spec.LevelInfo, earlier), keyDB, status(spec.LevelWarning, earlier)),
				Labels:      health("warning"),
				Probes:      []spec.Probe{probe("db"), probe("web")},
				Trackers: map[string]*Tracker{
					"web": tracker(spec.LevelInfo, earlier, time.Second),
					"db":  tracker(spec.LevelWarning, earlier, time.Second),
				},
			},
		},
		{
			name: "a transition sets its status key and the label",
			state: PodState{
				Annotations: with(other, keyWeb, status(spec.LevelInfo, earlier), keyDB, status(spec.LevelInfo, earlier)),
				Labels:      health("info"),
				Probes:      []spec.Probe{probe("db"), probe("web")},
				Trackers: map[string]*Tracker{
					"web": tracker(spec.LevelError, later, time.Second),
					"db":  tracker(spec.LevelInfo, earlier, time.Second),
				},
			},
			want: Patch{
				Annotations: map[string]*string{keyWeb: ptr(status(spec.LevelError, later))},
				Labels:      map[string]*string{spec.LabelHealth: ptr("error")},
			},
		},
		{
			name: "a transition that leaves the worst level writes no label",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelInfo, earlier), keyDB, status(spec.LevelError, earlier)),
				Labels:      health("error"),
				Probes:      []spec.Probe{probe("db"), probe("web")},
				Trackers: map[string]*Tracker{
					"web": tracker(spec.LevelWarning, later, time.Second),
					"db":  tracker(spec.LevelError, earlier, time.Second),
				},
			},
			want: Patch{Annotations: map[string]*string{keyWeb: ptr(status(spec.LevelWarning, later))}},
		},
		{
			name: "first level of a new pod: status key and label",
			state: PodState{
				Annotations: other,
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, later, time.Second)},
			},
			want: Patch{
				Annotations: map[string]*string{keyWeb: ptr(status(spec.LevelInfo, later))},
				Labels:      map[string]*string{spec.LabelHealth: ptr("info")},
			},
		},
		{
			name: "probed but no level yet: unknown, no status key",
			state: PodState{
				Probes:   []spec.Probe{probe("web")},
				Trackers: map[string]*Tracker{"web": {LastResult: decideNow}},
			},
			want: Patch{Labels: map[string]*string{spec.LabelHealth: ptr("unknown")}},
		},
		{
			name: "probed without a tracker: unknown",
			state: PodState{
				Labels: health("info"),
				Probes: []spec.Probe{probe("web")},
			},
			want: Patch{Labels: map[string]*string{spec.LabelHealth: ptr("unknown")}},
		},
		{
			name: "no fresh tracker: unknown, the recorded level stays",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelError, earlier)),
				Labels:      health("error"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelError, earlier, stale)},
			},
			want: Patch{Labels: map[string]*string{spec.LabelHealth: ptr("unknown")}},
		},
		{
			name: "a stale tracker does not count next to a fresh one",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelError, earlier), keyDB, status(spec.LevelInfo, earlier)),
				Labels:      health("error"),
				Probes:      []spec.Probe{probe("db"), probe("web")},
				Trackers: map[string]*Tracker{
					"web": tracker(spec.LevelError, earlier, stale),
					"db":  tracker(spec.LevelInfo, earlier, 0),
				},
			},
			want: Patch{Labels: map[string]*string{spec.LabelHealth: ptr("info")}},
		},
		{
			name: "a dropped probe loses its status key",
			state: PodState{
				Annotations: with(other, keyWeb, status(spec.LevelInfo, earlier), keyDB, status(spec.LevelError, earlier)),
				Labels:      health("error"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, earlier, 0)},
				Dropped:     []string{"db"},
			},
			want: Patch{
				Annotations: map[string]*string{keyDB: nil},
				Labels:      map[string]*string{spec.LabelHealth: ptr("info")},
			},
		},
		{
			name: "the last dropped probe takes the label with it",
			state: PodState{
				Annotations: with(other, keyWeb, status(spec.LevelInfo, earlier)),
				Labels:      with(health("info"), "app", "web"),
				Dropped:     []string{"web"},
			},
			want: Patch{
				Annotations: map[string]*string{keyWeb: nil},
				Labels:      map[string]*string{spec.LabelHealth: nil},
			},
		},
		{
			name: "a dropped probe without a status key writes nothing",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelInfo, earlier)),
				Labels:      health("info"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, earlier, 0)},
				Dropped:     []string{"db"},
			},
		},
		{
			name: "a dropped probe declared again keeps its key",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelInfo, earlier)),
				Labels:      health("info"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, earlier, 0)},
				Dropped:     []string{"web"},
			},
		},
		{
			name: "posted statuses are left alone but counted",
			state: PodState{
				Annotations: with(other, keyWeb, status(spec.LevelInfo, earlier), keyAgent, status(spec.LevelError, earlier)),
				Labels:      health("info"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, earlier, 0)},
			},
			want: Patch{Labels: map[string]*string{spec.LabelHealth: ptr("error")}},
		},
		{
			name: "posted statuses alone make a watched pod",
			state: PodState{
				Annotations: with(nil, keyAgent, status(spec.LevelWarning, earlier)),
			},
			want: Patch{Labels: map[string]*string{spec.LabelHealth: ptr("warning")}},
		},
		{
			name: "posted statuses count however old they are",
			state: PodState{
				Annotations: with(nil, keyAgent, status(spec.LevelWarning, decideNow.Add(-24*time.Hour))),
				Labels:      health("warning"),
			},
		},
		{
			name: "an unparsable status is neither counted nor touched",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelInfo, earlier), keyAgent, "broken"),
				Labels:      health("info"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, earlier, 0)},
			},
		},
		{
			name: "a probed status key is the tracker's, not a posted one",
			state: PodState{
				Annotations: with(nil, keyWeb, status(spec.LevelError, earlier)),
				Labels:      health("error"),
				Probes:      []spec.Probe{probe("web")},
				Trackers:    map[string]*Tracker{"web": tracker(spec.LevelInfo, later, 0)},
			},
			want: Patch{
				Annotations: map[string]*string{keyWeb: ptr(status(spec.LevelInfo, later))},
				Labels:      map[string]*string{spec.LabelHealth: ptr("info")},
			},
		},
		{
			name:  "nothing watched: the label goes",
			state: PodState{Annotations: other, Labels: with(health("error"), "app", "web")},
			want:  Patch{Labels: map[string]*string{spec.LabelHealth: nil}},
		},
		{
			name:  "nothing watched, no label: nothing",
			state: PodState{Annotations: other, Labels: map[string]string{"app": "web"}},
		},
		{
			name: "the status value is sanitized before comparing",
			state: PodState{
				Annotations: with(nil, keyWeb, "info/2024-05-01T09:00:00Z/HTTP 200"),
				Labels:      health("info"),
				Probes:      []spec.Probe{probe("web")},
				Trackers: map[string]*Tracker{"web": {
					Status:     spec.WatchdogStatus{Level: spec.LevelInfo, Time: earlier.Add(500 * time.Millisecond), Message: "  HTTP\t200 "},
					LastResult: decideNow,
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.state.Watchdog == (spec.Watchdog{}) {
				tt.state.Watchdog = w
			}
			annotations, labels := maps.Clone(tt.state.Annotations), maps.Clone(tt.state.Labels)
			got := Decide(tt.state, decideNow)
			if diff := cmp.Diff(normalize(tt.want), normalize(got)); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
			if !maps.Equal(annotations, tt.state.Annotations) || !maps.Equal(labels, tt.state.Labels) {
				t.Error("Decide changed its input")
			}
			if got.Empty() != (len(tt.want.Annotations)+len(tt.want.Labels) == 0) {
				t.Errorf("Empty() = %v", got.Empty())
			}
			for key := range got.Annotations {
				if !strings.HasPrefix(key, spec.PrefixWatchdogStatus) {
					t.Errorf("patch touches annotation %q", key)
				}
			}
			for key := range got.Labels {
				if key != spec.LabelHealth {
					t.Errorf("patch touches label %q", key)
				}
			}
			// Applying the patch reaches steady state: deciding again on
			// the patched pod writes nothing.
			next := tt.state
			next.Annotations, next.Labels = apply(tt.state.Annotations, got.Annotations), apply(tt.state.Labels, got.Labels)
			next.Dropped = nil
			if again := Decide(next, decideNow); !again.Empty() {
				t.Errorf("after the patch, Decide wants more: %v", describe(again))
			}
		})
	}
}

// TestDecideRoundTripsTheClock drives one pod through a probe's life with a
// fake clock: first level, steady state, transition, staleness.
func TestDecideRoundTripsTheClock(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(decideNow)
	w := spec.DefaultWatchdog()
	w.UnhealthyThreshold = 2
	tr := &Tracker{}
	pod := PodState{Probes: []spec.Probe{probe("web")}, Trackers: map[string]*Tracker{"web": tr}, Watchdog: w}

	observe := func(r Result) {
		clk.SetTime(clk.Now().Add(w.Period))
		r.At = clk.Now()
		tr.Observe(r, w)
	}
	decide := func() Patch {
		p := Decide(pod, clk.Now())
		pod.Annotations, pod.Labels = apply(pod.Annotations, p.Annotations), apply(pod.Labels, p.Labels)
		return p
	}

	observe(Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200"})
	if p := decide(); len(p.Annotations) != 1 || *p.Labels[spec.LabelHealth] != "info" {
		t.Fatalf("first level: %v", describe(p))
	}
	entered := pod.Annotations[keyWeb]
	for range 5 {
		observe(Result{OK: true, Level: spec.LevelInfo, Message: "HTTP 200"})
		if p := decide(); !p.Empty() {
			t.Fatalf("steady state wrote %v", describe(p))
		}
	}
	if pod.Annotations[keyWeb] != entered {
		t.Fatalf("status moved in steady state: %q, then %q", entered, pod.Annotations[keyWeb])
	}
	observe(Result{Message: "HTTP 500"})
	if p := decide(); !p.Empty() {
		t.Fatalf("one failure below the threshold wrote %v", describe(p))
	}
	observe(Result{Message: "HTTP 500"})
	p := decide()
	want := spec.WatchdogStatus{Level: spec.LevelError, Time: clk.Now(), Message: "HTTP 500"}.String()
	if len(p.Annotations) != 1 || p.Annotations[keyWeb] == nil || *p.Annotations[keyWeb] != want || *p.Labels[spec.LabelHealth] != "error" {
		t.Fatalf("transition: %v, want %s=%q and error", describe(p), keyWeb, want)
	}
	clk.SetTime(clk.Now().Add(3*w.Period + w.Timeout))
	if p := decide(); !p.Empty() {
		t.Fatalf("still fresh, wrote %v", describe(p))
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if p := decide(); len(p.Annotations) != 0 || *p.Labels[spec.LabelHealth] != spec.HealthUnknown {
		t.Fatalf("stale: %v, want only the label unknown", describe(p))
	}
}

func TestMergePatch(t *testing.T) {
	tests := []struct {
		name  string
		patch Patch
		want  string
	}{
		{
			name: "set, remove and label",
			patch: Patch{
				Annotations: map[string]*string{"k": ptr("v"), "gone": nil},
				Labels:      map[string]*string{spec.LabelHealth: ptr("error")},
			},
			want: `{"metadata":{"annotations":{"gone":null,"k":"v"},"labels":{"status.autocrane.io/health":"error"}}}`,
		},
		{
			name:  "annotations only",
			patch: Patch{Annotations: map[string]*string{keyWeb: ptr("info/2024-05-01T10:00:00Z/HTTP 200")}, Labels: map[string]*string{}},
			want:  `{"metadata":{"annotations":{"status.autocrane.io/web":"info/2024-05-01T10:00:00Z/HTTP 200"}}}`,
		},
		{
			name:  "label removed only",
			patch: Patch{Annotations: map[string]*string{}, Labels: map[string]*string{spec.LabelHealth: nil}},
			want:  `{"metadata":{"labels":{"status.autocrane.io/health":null}}}`,
		},
		{
			name:  "empty",
			patch: Patch{},
			want:  `{"metadata":{}}`,
		},
		{
			name:  "values are escaped",
			patch: Patch{Annotations: map[string]*string{"k": ptr(`"}<&>`)}},
			want:  `{"metadata":{"annotations":{"k":"\"}\u003c\u0026\u003e"}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.patch.MergePatch()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("MergePatch() = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestMergePatchTouchesOnlyItsKeys applies a patch to a whole pod as the
// API server would (RFC 7386) and checks that nothing else changed.
func TestMergePatchTouchesOnlyItsKeys(t *testing.T) {
	pod := `{"metadata":{"name":"p","annotations":{"app.example.com/x":"1","status.autocrane.io/web":"info/2024-05-01T09:00:00Z/HTTP 200","status.autocrane.io/db":"error/2024-05-01T09:00:00Z/HTTP 500"},` +
		`"labels":{"app":"web","status.autocrane.io/health":"error"}},"spec":{"containers":[{"name":"c"}]}}`
	patch := Patch{
		Annotations: map[string]*string{keyWeb: ptr("error/2024-05-01T10:00:00Z/HTTP 500"), keyDB: nil},
		Labels:      map[string]*string{spec.LabelHealth: ptr("error")},
	}
	data, err := patch.MergePatch()
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &shape); err != nil {
		t.Fatalf("patch %s: %v", data, err)
	}
	if len(shape) != 1 || len(shape["metadata"]) != 2 {
		t.Fatalf("patch %s touches more than metadata.annotations and metadata.labels", data)
	}
	out, err := jsonpatch.MergePatch([]byte(pod), data)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	wantPod := `{"metadata":{"name":"p","annotations":{"app.example.com/x":"1","status.autocrane.io/web":"error/2024-05-01T10:00:00Z/HTTP 500"},` +
		`"labels":{"app":"web","status.autocrane.io/health":"error"}},"spec":{"containers":[{"name":"c"}]}}`
	if err := json.Unmarshal([]byte(wantPod), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patched pod (-want +got):\n%s", diff)
	}
}

func TestPostedStatuses(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	got := PostedStatuses(map[string]string{
		keyWeb:                  status(spec.LevelError, at),
		keyAgent:                status(spec.LevelWarning, at),
		keyDB:                   "garbage",
		spec.LabelHealth:        "error", // the label's key, were it an annotation: not a status
		"other.example.com/web": status(spec.LevelError, at),
	}, map[string]bool{"web": true})
	want := map[string]spec.WatchdogStatus{
		"agent": {Level: spec.LevelWarning, Time: at, Message: "HTTP 200"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PostedStatuses (-want +got):\n%s", diff)
	}
}

// normalize drops empty maps, so a nil map and an empty one compare equal.
func normalize(p Patch) Patch {
	if len(p.Annotations) == 0 {
		p.Annotations = nil
	}
	if len(p.Labels) == 0 {
		p.Labels = nil
	}
	return p
}

// apply applies one map of a patch.
func apply(m map[string]string, p map[string]*string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	return out
}

func describe(p Patch) string {
	b, err := p.MergePatch()
	if err != nil {
		return err.Error()
	}
	return string(b)
}
