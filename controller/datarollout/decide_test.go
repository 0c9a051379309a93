package datarollout

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/autocrane/autocrane/spec"
)

// rolling is a rollout of v whose groups are at the given progress.
func rolling(v Version, groups map[string]GroupProgress) *Rollout {
	return &Rollout{Version: v, Started: t0.Add(-time.Hour), Groups: groups}
}

func at(wave int, requested time.Time) GroupProgress {
	return GroupProgress{Owner: "ReplicaSet/web-5d9c", Wave: wave, Requested: requested}
}

// changes summarizes a decision's request changes as pod=version id,
// "pod=-" for a removal.
func changes(d Decision) map[string]string {
	out := map[string]string{}
	for _, c := range d.Changes {
		id := "-"
		if r, err := spec.ParseDataRequest(c.To); err == nil {
			id = r.ID
		}
		out[c.Pod.Name] = id
	}
	return out
}

func idOf(p *Promoted) string {
	if p == nil {
		return ""
	}
	return p.ID
}

func TestDecide(t *testing.T) {
	v1, v2, v3 := ver(1), ver(2), ver(3)
	four := func(opts ...slotOpt) []Slot { return pods(4, opts...) }
	tests := map[string]struct {
		state     State
		persisted *bool
		control   Control
		catalog   Catalog
		slots     []Slot
		// want: request changes (pod=version id), event reasons, and
		// the resulting state's LKG, rolling version, its groups' waves
		// (key=wave index, "done"), bad versions.
		wantChanges map[string]string
		wantReasons []Reason
		wantLKG     string
		wantRolling string
		wantWaves   map[string]string
		wantBad     []string
		wantRequeue time.Duration
		wantStalled string
		wantPins    []string
	}{
		"a new version starts wave 1 with one pod": {
			state:       State{LKG: lkg(v1)},
			catalog:     reachable(1, 2),
			slots:       four(on(v1, t0.Add(-time.Hour))),
			wantChanges: map[string]string{"web-0": "v2"},
			wantReasons: []Reason{ReasonRolloutStarted, ReasonWaveStarted},
			wantLKG:     "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "0"},
			wantRequeue: deadline, wantPins: []string{"v1", "v2"},
		},
		"the first pod chosen is healthy and Ready, the oldest first": {
			state:   State{LKG: lkg(v1)},
			catalog: reachable(1, 2),
			slots: []Slot{
				slot("a", on(v1, t0), notReady(), created(t0.Add(-3*time.Hour))),
				slot("b", on(v1, t0), inError(t0), created(t0.Add(-3*time.Hour))),
				slot("c", on(v1, t0), created(t0.Add(-time.Hour))),
				slot("d", on(v1, t0), created(t0.Add(-2*time.Hour))),
			},
			wantChanges: map[string]string{"d": "v2"},
			wantReasons: []Reason{ReasonRolloutStarted, ReasonWaveStarted},
			wantLKG:     "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "0"},
			wantRequeue: deadline, wantPins: []string{"v1", "v2"},
		},
		"a wave waits until its pods hold the version live": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-time.Minute))})},
			catalog: reachable(1, 2),
			slots: append([]Slot{slot("web-0", requesting(v2), holding(v1, t0.Add(-time.Hour)))},
				pods(3, on(v1, t0.Add(-time.Hour)))[1:]...),
			wantLKG: "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "0"},
			wantRequeue: deadline - time.Minute, wantPins: []string{"v1", "v2"},
		},
		"the bake counts from when the data went live, not from the request": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-10*time.Minute))})},
			catalog: reachable(1, 2),
			slots:   append([]Slot{slot("web-0", on(v2, t0.Add(-4*time.Minute)))}, pods(4, on(v1, t0.Add(-time.Hour)))[1:]...),
			wantLKG: "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "0"},
			wantRequeue: time.Minute, wantPins: []string{"v1", "v2"},
		},
		"a wave passes after the bake; 10% of 4 pods is one pod, so wave 2 passes with it": {
			state:       State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-10*time.Minute))})},
			catalog:     reachable(1, 2),
			slots:       append([]Slot{slot("web-0", on(v2, t0.Add(-5*time.Minute)))}, pods(4, on(v1, t0.Add(-time.Hour)))[1:]...),
			wantChanges: map[string]string{"web-1": "v2"},
			wantReasons: []Reason{ReasonWavePassed, ReasonWaveStarted},
			wantLKG:     "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "2"},
			wantRequeue: deadline, wantPins: []string{"v1", "v2"},
		},
		"restart from persisted state resumes mid-wave": {
			// Wave 3 (50%) asked web-1 before the restart; web-1 went
			// live since; the bake is not over.
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(2, t0.Add(-3*time.Minute))})},
			catalog: reachable(1, 2),
			slots: []Slot{
				slot("web-0", on(v2, t0.Add(-20*time.Minute))), slot("web-1", on(v2, t0.Add(-2*time.Minute))),
				slot("web-2", on(v1, t0.Add(-time.Hour))), slot("web-3", on(v1, t0.Add(-time.Hour))),
			},
			wantLKG: "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "2"},
			wantRequeue: 3 * time.Minute, wantPins: []string{"v1", "v2"},
		},
		"pods added mid-wave extend it, and start on the last known good version": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(2, t0.Add(-20*time.Minute))})},
			catalog: reachable(1, 2),
			slots: []Slot{
				slot("web-0", on(v2, t0.Add(-30*time.Minute))), slot("web-1", on(v2, t0.Add(-20*time.Minute))),
				slot("web-2", on(v1, t0.Add(-time.Hour))), slot("web-3", on(v1, t0.Add(-time.Hour))),
				slot("web-4", notReady()), slot("web-5", notReady()),
			},
			// 50% of 6 is 3: web-2 (Ready, oldest) joins the wave;
			// the new pods get the last known good version.
			wantChanges: map[string]string{"web-2": "v2", "web-4": "v1", "web-5": "v1"},
			wantReasons: []Reason{ReasonWaveExtended},
			wantLKG:     "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "2"},
			wantRequeue: deadline, wantPins: []string{"v1", "v2"},
		},
		"a pod of the new version in error rolls every pod on it back, and the version is bad": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(2, t0.Add(-3*time.Minute))})},
			catalog: reachable(1, 2),
			slots: []Slot{
				slot("web-0", on(v2, t0.Add(-20*time.Minute))), slot("web-1", on(v2, t0.Add(-2*time.Minute)), inError(t0.Add(-time.Minute))),
				slot("web-2", on(v1, t0.Add(-time.Hour))), slot("web-3", on(v1, t0.Add(-time.Hour))),
			},
			wantChanges: map[string]string{"web-0": "v1", "web-1": "v1"},
			wantReasons: []Reason{ReasonWaveFailed, ReasonRolledBack},
			wantLKG:     "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"an error that began before the version went live does not count": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(2, t0.Add(-3*time.Minute))})},
			catalog: reachable(1, 2),
			slots: []Slot{
				slot("web-0", on(v2, t0.Add(-20*time.Minute))), slot("web-1", on(v2, t0.Add(-2*time.Minute)), inError(t0.Add(-30*time.Minute))),
				slot("web-2", on(v1, t0.Add(-time.Hour))), slot("web-3", on(v1, t0.Add(-time.Hour))),
			},
			wantLKG: "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "2"},
			wantRequeue: 3 * time.Minute, wantPins: []string{"v1", "v2"},
		},
		"an error on a terminating pod still counts": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-3*time.Minute))})},
			catalog: reachable(1, 2),
			slots: []Slot{
				slot("web-0", on(v2, t0.Add(-2*time.Minute)), inError(t0.Add(-time.Minute)), terminating()),
				slot("web-1", on(v1, t0.Add(-time.Hour))), slot("web-9", on(v2, t0.Add(-time.Minute))),
			},
			wantChanges: map[string]string{"web-9": "v1"},
			wantReasons: []Reason{ReasonWaveFailed, ReasonRolledBack},
			wantLKG:     "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"the progress deadline fails a wave whose pods do not go live": {
			state:       State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-deadline))})},
			catalog:     reachable(1, 2),
			slots:       []Slot{slot("web-0", requesting(v2), holding(v1, t0.Add(-time.Hour))), slot("web-1", on(v1, t0.Add(-time.Hour)))},
			wantChanges: map[string]string{"web-0": "v1"},
			wantReasons: []Reason{ReasonWaveFailed, ReasonRolledBack},
			wantLKG:     "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"a bad version is not retried": {
			state:   State{LKG: lkg(v1), Bad: []BadVersion{{Version: v2, At: t0.Add(-time.Hour), Reason: "pod web-1 went to error"}}},
			catalog: reachable(1, 2),
			slots:   four(on(v1, t0.Add(-time.Hour))),
			wantLKG: "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"an older version is not shipped when the newest is bad": {
			state:   State{LKG: lkg(v1), Bad: []BadVersion{{Version: v3, At: t0.Add(-time.Hour), Reason: "error"}}},
			catalog: reachable(1, 2, 3),
			slots:   four(on(v1, t0.Add(-time.Hour))),
			wantLKG: "v1", wantBad: []string{"v3"}, wantPins: []string{"v1"},
		},
		"a newer version after a bad one rolls out": {
			state:       State{LKG: lkg(v1), Bad: []BadVersion{{Version: v2, At: t0.Add(-time.Hour), Reason: "error"}}},
			catalog:     reachable(1, 2, 3),
			slots:       four(on(v1, t0.Add(-time.Hour))),
			wantChanges: map[string]string{"web-0": "v3"},
			wantReasons: []Reason{ReasonRolloutStarted, ReasonWaveStarted},
			wantLKG:     "v1", wantRolling: "v3", wantWaves: map[string]string{webGroup.Key: "0"}, wantBad: []string{"v2"},
			wantRequeue: deadline, wantPins: []string{"v1", "v3"},
		},
		"the version becomes last known good after the last wave": {
			state:       State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(3, t0.Add(-10*time.Minute))}), Bad: []BadVersion{{Version: v1, At: t0, Reason: "old"}}},
			catalog:     reachable(1, 2),
			slots:       four(on(v2, t0.Add(-6*time.Minute))),
			wantReasons: []Reason{ReasonWavePassed, ReasonPromoted},
			wantLKG:     "v2", wantPins: []string{"v1", "v2"},
		},
		"promotion waits for every group": {
			state: State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{
				webGroup.Key: {Owner: "ReplicaSet/web-5d9c", Wave: 3, Requested: t0.Add(-time.Hour), Done: true}, jobsGroup.Key: at(0, t0.Add(-time.Minute)),
			})},
			catalog: reachable(1, 2),
			slots: append(four(on(v2, t0.Add(-time.Hour))),
				slot("jobs-0", inGroup(jobsGroup), on(v2, t0.Add(-30*time.Second))), slot("jobs-1", inGroup(jobsGroup), on(v1, t0.Add(-time.Hour)))),
			wantLKG: "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "done", jobsGroup.Key: "0"},
			wantRequeue: 270 * time.Second, wantPins: []string{"v1", "v2"},
		},
		"an unreachable repository changes nothing": {
			state:   State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-10*time.Minute))})},
			catalog: Catalog{Reachable: false},
			slots:   append([]Slot{slot("web-0", on(v2, t0.Add(-6*time.Minute)))}, pods(4, on(v1, t0.Add(-time.Hour)))[1:]...),
			wantLKG: "v1", wantRolling: "v2", wantWaves: map[string]string{webGroup.Key: "0"},
			wantStalled: "the data repository cannot be reached", wantPins: []string{"v1", "v2"},
		},
		"an unreachable repository does not stop a rollback": {
			state:       State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-10*time.Minute))})},
			catalog:     Catalog{Reachable: false},
			slots:       append([]Slot{slot("web-0", on(v2, t0.Add(-6*time.Minute)), inError(t0))}, pods(2, on(v1, t0.Add(-time.Hour)))[1:]...),
			wantChanges: map[string]string{"web-0": "v1"},
			wantReasons: []Reason{ReasonWaveFailed, ReasonRolledBack},
			wantLKG:     "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"paused: no new rollout": {
			state:   State{LKG: lkg(v1)},
			control: Control{Paused: true},
			catalog: reachable(1, 2),
			slots:   four(on(v1, t0.Add(-time.Hour))),
			wantLKG: "v1", wantPins: []string{"v1"},
		},
		"the first version goes out in waves too": {
			catalog:     reachable(1),
			slots:       four(),
			wantChanges: map[string]string{"web-0": "v1"},
			wantReasons: []Reason{ReasonRolloutStarted, ReasonWaveStarted},
			wantRolling: "v1", wantWaves: map[string]string{webGroup.Key: "0"},
			wantRequeue: deadline, wantPins: []string{"v1"},
		},
		"a failed first version: its requests are removed and nothing else is asked": {
			state:       State{Rollout: rolling(v1, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-2*time.Minute))})},
			catalog:     reachable(1),
			slots:       append([]Slot{slot("web-0", on(v1, t0.Add(-time.Minute)), inError(t0))}, pods(3)[1:]...),
			wantChanges: map[string]string{"web-0": "-"},
			wantReasons: []Reason{ReasonWaveFailed, ReasonRolledBack},
			wantBad:     []string{"v1"},
		},
		"pods that predate the controller are adopted": {
			persisted:   new(false),
			catalog:     reachable(1),
			slots:       append(pods(3, on(v1, t0.Add(-time.Hour))), slot("web-3", on(v3, t0.Add(-time.Hour)))),
			wantChanges: map[string]string{"web-3": "v1"},
			wantReasons: []Reason{ReasonAdopted},
			wantLKG:     "v1", wantPins: []string{"v1"},
		},
		"an operator's reject rolls the rolling version back": {
			state:       State{LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-time.Minute))})},
			control:     Control{Reject: []string{"v2"}},
			catalog:     reachable(1, 2),
			slots:       append([]Slot{slot("web-0", on(v2, t0.Add(-30*time.Second)))}, pods(2, on(v1, t0.Add(-time.Hour)))[1:]...),
			wantChanges: map[string]string{"web-0": "v1"},
			wantReasons: []Reason{ReasonRolledBack},
			wantLKG:     "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"an operator's reject of the last known good version goes back to the previous one": {
			state:       State{LKG: lkg(v2), Previous: lkg(v1)},
			control:     Control{Reject: []string{"v2"}},
			catalog:     reachable(1, 2),
			slots:       pods(2, on(v2, t0.Add(-time.Hour))),
			wantChanges: map[string]string{"web-0": "v1", "web-1": "v1"},
			wantReasons: []Reason{ReasonRolledBack},
			wantLKG:     "v1", wantBad: []string{"v2"}, wantPins: []string{"v1"},
		},
		"a reject with no previous version is refused": {
			state:   State{LKG: lkg(v2)},
			control: Control{Reject: []string{"v2"}},
			catalog: reachable(1, 2),
			slots:   pods(2, on(v2, t0.Add(-time.Hour))),
			wantLKG: "v2", wantPins: []string{"v2"},
			wantStalled: "version v2 is rejected, but it is the last known good version and there is no previous one to go back to",
		},
		"no versions and no requests: nothing to persist": {
			catalog: reachable(),
			slots:   four(),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := tc.state
			st.Line = testLine
			persisted := !st.Empty()
			if tc.persisted != nil {
				persisted = *tc.persisted
			}
			d := Decide(Input{Now: t0, Line: testLine, State: st, Persisted: persisted, Control: tc.control,
				Slots: tc.slots, Catalog: tc.catalog, ProgressDeadline: deadline})
			if tc.wantChanges == nil {
				tc.wantChanges = map[string]string{}
			}
			if diff := cmp.Diff(tc.wantChanges, changes(d)); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantReasons, reasonsOf(d.Events)); diff != "" {
				t.Errorf("event reasons (-want +got):\n%s\nevents: %+v", diff, d.Events)
			}
			if got := idOf(d.State.LKG); got != tc.wantLKG {
				t.Errorf("LKG %q, want %q", got, tc.wantLKG)
			}
			gotRolling, gotWaves := "", map[string]string(nil)
			if r := d.State.Rollout; r != nil {
				gotRolling, gotWaves = r.ID, map[string]string{}
				for k, g := range r.Groups {
					gotWaves[k] = fmt.Sprint(g.Wave)
					if g.Done {
						gotWaves[k] = "done"
					}
				}
			}
			if gotRolling != tc.wantRolling || !maps.Equal(gotWaves, tc.wantWaves) {
				t.Errorf("rolling %q %v, want %q %v", gotRolling, gotWaves, tc.wantRolling, tc.wantWaves)
			}
			var gotBad []string
			for _, b := range d.State.Bad {
				gotBad = append(gotBad, b.ID)
			}
			if diff := cmp.Diff(tc.wantBad, gotBad); diff != "" {
				t.Errorf("bad (-want +got):\n%s", diff)
			}
			if d.RequeueAfter != tc.wantRequeue {
				t.Errorf("requeue after %s, want %s", d.RequeueAfter, tc.wantRequeue)
			}
			if d.Stalled != tc.wantStalled {
				t.Errorf("stalled %q, want %q", d.Stalled, tc.wantStalled)
			}
			if diff := cmp.Diff(tc.wantPins, d.Pins); diff != "" {
				t.Errorf("pins (-want +got):\n%s", diff)
			}
			if len(tc.wantChanges) == 0 && len(tc.wantReasons) == 0 && tc.wantLKG == idOf(st.LKG) && !cmp.Equal(st, d.State) && persisted {
				t.Errorf("state changed without a reason:\n%s", cmp.Diff(st, d.State))
			}
		})
	}
}

// TestDecideMessages pins the text people read in Events.
func TestDecideMessages(t *testing.T) {
	v1, v2 := ver(1), ver(2)
	d := Decide(Input{Now: t0, Line: testLine, State: State{Line: testLine, LKG: lkg(v1)}, Persisted: true,
		Slots: pods(4, on(v1, t0.Add(-time.Hour))), Catalog: reachable(1, 2), ProgressDeadline: deadline})
	want := []string{
		"rolling out version v2 of source models (last known good version v1) to 4 pods in 1 groups, in waves",
		"starting wave 1 of 4 (1) of version v2: asking 1 more pods, 1 of 4 pods of ReplicaSet/web-5d9c on it",
	}
	var got []string
	for _, e := range d.Events {
		got = append(got, e.Message)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}

	st := State{Line: testLine, LKG: lkg(v1), Rollout: rolling(v2, map[string]GroupProgress{webGroup.Key: at(0, t0.Add(-3*time.Minute))})}
	d = Decide(Input{Now: t0, Line: testLine, State: st, Persisted: true, Catalog: reachable(1, 2), ProgressDeadline: deadline,
		Slots: []Slot{slot("web-0", on(v2, t0.Add(-2*time.Minute)), inError(t0.Add(-time.Minute))), slot("web-1", on(v1, t0))}})
	want = []string{
		"wave 1 of 4 (1) of version v2 failed: pod web-0 went to error on version v2",
		"version v2 of source models failed (pod web-0 went to error on version v2) and will not be retried: rolling 1 pods back to the last known good version v1",
	}
	got = nil
	for _, e := range d.Events {
		got = append(got, e.Message)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if d.Events[0].Pod == nil || d.Events[0].Pod.Name != "web-0" {
		t.Errorf("the wave failure names pod %v, want web-0", d.Events[0].Pod)
	}
	if d.Finished == nil || d.Finished.Result != ResultFailed || d.Finished.Duration != time.Hour {
		t.Errorf("finished %+v, want failed after 1h", d.Finished)
	}
}

// TestRolloutOnFakeClock runs a whole rollout of 4 pods with the default
// waves (1, 10%, 50%, 100%; bake 300 s) on a fake clock.
func TestRolloutOnFakeClock(t *testing.T) {
	v1, v2 := ver(1), ver(2)
	s := newSim(t, State{LKG: lkg(v1)}, reachable(1, 2), pods(4, on(v1, t0.Add(-time.Hour)))...)
	bake := time.Duration(spec.DefaultBakeSeconds) * time.Second

	// The sizes of the waves, in pods on v2: 1, 10% of 4 = 1 (passes
	// with the first), 50% = 2, 100% = 4.
	for _, wantOn := range []int{1, 2, 4} {
		s.step()
		if got := s.count(v2); got != wantOn {
			t.Fatalf("%s pods on v2: %d, want %d (%s)", s.clock.Now().Sub(t0), got, wantOn, s.requests())
		}
		// The datadeployers take 40 s to go live; the bake runs from then.
		s.clock.Step(40 * time.Second)
		s.step()
		s.deploy()
		s.clock.Step(bake - time.Second)
		if d := s.step(); len(d.Changes) != 0 || d.RequeueAfter != time.Second {
			t.Fatalf("the wave moved before its bake was over: %+v", d)
		}
		s.clock.Step(time.Second)
	}
	d := s.step()
	if idOf(s.state.LKG) != "v2" || s.state.Rollout != nil || idOf(s.state.Previous) != "v1" {
		t.Fatalf("not promoted: %+v", s.state)
	}
	if d.Finished == nil || d.Finished.Result != ResultPromoted {
		t.Errorf("finished %+v", d.Finished)
	}
	wantReasons := []Reason{
		ReasonRolloutStarted, ReasonWaveStarted, ReasonWavePassed,
		ReasonWaveStarted, ReasonWavePassed, // wave 3 (50%); wave 2 passed with wave 1
		ReasonWaveStarted, ReasonWavePassed, ReasonPromoted,
	}
	if diff := cmp.Diff(wantReasons, s.reasons()); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	// Steady state: nothing more to do, nothing to write.
	before := s.state
	if d := s.step(); len(d.Changes)+len(d.Events) != 0 || !cmp.Equal(before, d.State) {
		t.Errorf("steady state decided %+v", d)
	}
}

// TestRolloutFailureThenNewer: an error in wave 3 rolls v2 back, v2 stays
// out even as pods come and go, and v3 rolls out when it appears.
func TestRolloutFailureThenNewer(t *testing.T) {
	v1, v2, v3 := ver(1), ver(2), ver(3)
	s := newSim(t, State{LKG: lkg(v1)}, reachable(1, 2), pods(4, on(v1, t0.Add(-time.Hour)))...)
	s.step() // wave 1: one pod
	s.deploy()
	s.clock.Step(6 * time.Minute)
	s.step() // wave 3 asks a second pod
	s.deploy()
	if got := s.count(v2); got != 2 {
		t.Fatalf("%d pods on v2, want 2", got)
	}
	s.clock.Step(time.Minute)
	s.slots[s.find("web-1")].Health, s.slots[s.find("web-1")].ErrorSince = "error", s.clock.Now()
	s.step()
	if got := s.requests(); got != "web-0=v1 web-1=v1 web-2=v1 web-3=v1" {
		t.Fatalf("after the failure: %s", got)
	}
	if !s.state.IsBad("v2") || s.state.Rollout != nil {
		t.Fatalf("v2 not bad: %+v", s.state)
	}
	s.deploy()
	s.slots[s.find("web-1")].Health = ""
	s.slots = append(s.slots, slot("web-4"))
	for range 3 {
		s.clock.Step(time.Hour)
		if d := s.step(); s.count(v2) != 0 || s.state.Rollout != nil {
			t.Fatalf("v2 retried: %+v", d)
		}
	}
	if got := s.requests(); !strings.HasSuffix(got, "web-4=v1") {
		t.Errorf("a new pod does not start on the last known good version: %s", got)
	}
	s.catalog = reachable(1, 2, 3)
	s.step()
	if s.count(v3) != 1 || s.state.Rollout == nil || s.state.Rollout.ID != "v3" {
		t.Errorf("v3 does not roll out: %s", s.requests())
	}
}

// TestRestartResumes stops a rollout mid-wave and resumes it from the
// persisted JSON alone, as a new leader would.
func TestRestartResumes(t *testing.T) {
	v1, v2 := ver(1), ver(2)
	s := newSim(t, State{LKG: lkg(v1)}, reachable(1, 2), pods(4, on(v1, t0.Add(-time.Hour)))...)
	s.step()
	s.clock.Step(30 * time.Second)
	s.deploy()
	data, err := s.state.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// A new leader, 2 minutes later: it knows only the ConfigMap and the pods.
	restored, err := ParseState(data, testLine)
	if err != nil {
		t.Fatal(err)
	}
	r := newSim(t, restored, s.catalog, s.slots...)
	r.clock.SetTime(s.clock.Now().Add(2 * time.Minute))
	if d := r.step(); len(d.Changes) != 0 || d.RequeueAfter != 3*time.Minute {
		t.Fatalf("resumed with %+v, want to wait 3 more minutes of bake", d)
	}
	r.clock.Step(3 * time.Minute)
	r.step()
	if got := r.count(v2); got != 2 {
		t.Errorf("after the bake %d pods on v2, want 2", got)
	}
}
