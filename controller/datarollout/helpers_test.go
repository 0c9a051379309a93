package datarollout

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

var (
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testLine  = Line{Namespace: "team-a", StoreURL: "http://datarepository.team-a.svc:9790", Source: "models"}
	webOwner  = owner("ReplicaSet", "web-5d9c", "uid-web")
	jobOwner  = owner("ReplicaSet", "jobs-77aa", "uid-jobs")
	webGroup  = GroupOf(webOwner, "models")
	jobsGroup = GroupOf(jobOwner, "models")
)

const deadline = 10 * time.Minute

func owner(kind, name, uid string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(uid), Controller: &yes}
}

// ver is version n, with a digest made of n's last hex digit.
func ver(n int) Version {
	return Version{ID: fmt.Sprintf("v%d", n), Digest: "sha256:" + strings.Repeat(fmt.Sprintf("%x", n%16), 64)}
}

func versions(ns ...int) []Version {
	out := make([]Version, len(ns))
	for i, n := range ns {
		out[i] = ver(n)
	}
	return out
}

func reachable(ns ...int) Catalog { return Catalog{Reachable: true, Versions: versions(ns...)} }

type slotOpt func(*Slot)

// slot is pod name's "models" deployment in the web group, Ready, created
// in name order an hour before t0, with the default rollout.
func slot(name string, opts ...slotOpt) Slot {
	s := Slot{
		Pod:     types.NamespacedName{Namespace: testLine.Namespace, Name: name},
		UID:     types.UID("uid-" + name),
		Created: t0.Add(-time.Hour),
		Group:   webGroup,
		Rollout: spec.DefaultRollout(),
		Ready:   true,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func requesting(v Version) slotOpt { return func(s *Slot) { s.Request = v.Request(testLine.Source) } }

// on requests v and holds it live since since.
func on(v Version, since time.Time) slotOpt {
	return func(s *Slot) {
		s.Request = v.Request(testLine.Source)
		s.Status = liveStatus(v, since)
	}
}

func liveStatus(v Version, since time.Time) string {
	return spec.DataStatus{State: spec.DataLive, Version: v.ID, Digest: v.Digest, Since: since}.String()
}

func holding(v Version, since time.Time) slotOpt {
	return func(s *Slot) { s.Status = liveStatus(v, since) }
}

func inError(since time.Time) slotOpt {
	return func(s *Slot) { s.Health, s.ErrorSince = string(spec.LevelError), since }
}

func inGroup(g Group) slotOpt     { return func(s *Slot) { s.Group = g } }
func notReady() slotOpt           { return func(s *Slot) { s.Ready = false } }
func terminating() slotOpt        { return func(s *Slot) { s.Terminating = true } }
func created(t time.Time) slotOpt { return func(s *Slot) { s.Created = t } }
func withRollout(waves string, bake int) slotOpt {
	return func(s *Slot) {
		r, errs := spec.ParseRollout(map[string]string{spec.KeyRolloutWaves: waves, spec.KeyRolloutBakeSeconds: fmt.Sprint(bake)})
		if len(errs) > 0 {
			panic(errs.ToAggregate())
		}
		s.Rollout = r
	}
}

func lkg(v Version) *Promoted { return &Promoted{Version: v, Since: t0.Add(-24 * time.Hour)} }

// sim runs Decide repeatedly as the reconciler would: the state goes
// through its JSON form between steps (as through the ConfigMap), request
// changes are applied to the slots, and datadeployers go live on request.
type sim struct {
	t         *testing.T
	clock     *clocktesting.FakeClock
	state     State
	persisted bool
	control   Control
	catalog   Catalog
	slots     []Slot
	events    []Event
	last      Decision
}

func newSim(t *testing.T, st State, catalog Catalog, slots ...Slot) *sim {
	t.Helper()
	st.Line = testLine
	return &sim{t: t, clock: clocktesting.NewFakeClock(t0), state: st, persisted: !st.Empty(), catalog: catalog, slots: slots}
}

// step decides once and applies the decision.
func (s *sim) step() Decision {
	s.t.Helper()
	d := Decide(Input{Now: s.clock.Now(), Line: testLine, State: s.state, Persisted: s.persisted, Control: s.control,
		Slots: slices.Clone(s.slots), Catalog: s.catalog, ProgressDeadline: deadline})
	if s.persisted || !d.State.Empty() {
		data, err := d.State.Marshal()
		if err != nil {
			s.t.Fatal(err)
		}
		back, err := ParseState(data, testLine)
		if err != nil {
			s.t.Fatalf("persisted state does not parse: %v\n%s", err, data)
		}
		s.state, s.persisted = back, true
	}
	for _, c := range d.Changes {
		i := s.find(c.Pod.Name)
		if s.slots[i].Request != c.From {
			s.t.Fatalf("change of %s from %q, but it requests %q", c.Pod.Name, c.From, s.slots[i].Request)
		}
		s.slots[i].Request = c.To
	}
	s.events = append(s.events, d.Events...)
	s.last = d
	return d
}

// deploy makes every pod's datadeployer hold its request live, from now.
func (s *sim) deploy() {
	for i := range s.slots {
		r, err := spec.ParseDataRequest(s.slots[i].Request)
		if err != nil {
			continue
		}
		v := Version{ID: r.ID, Digest: r.Digest}
		if st, err := spec.ParseDataStatus(s.slots[i].Status); err == nil && st.Version == v.ID {
			continue
		}
		s.slots[i].Status = liveStatus(v, s.clock.Now())
	}
}

func (s *sim) find(name string) int {
	for i := range s.slots {
		if s.slots[i].Pod.Name == name {
			return i
		}
	}
	s.t.Fatalf("no slot %s", name)
	return -1
}

// requests lists the version id each pod requests, "-" for none, in order.
func (s *sim) requests() string {
	var out []string
	for _, sl := range s.slots {
		id := "-"
		if r, err := spec.ParseDataRequest(sl.Request); err == nil {
			id = r.ID
		}
		out = append(out, sl.Pod.Name+"="+id)
	}
	return strings.Join(out, " ")
}

// count is how many pods request v.
func (s *sim) count(v Version) int {
	n := 0
	for _, sl := range s.slots {
		if sl.Request == v.Request(testLine.Source) {
			n++
		}
	}
	return n
}

func (s *sim) reasons() []Reason { return reasonsOf(s.events) }

func reasonsOf(events []Event) []Reason {
	var out []Reason
	for _, e := range events {
		out = append(out, e.Reason)
	}
	return out
}

func pods(n int, opts ...slotOpt) []Slot {
	out := make([]Slot, n)
	for i := range out {
		out[i] = slot(fmt.Sprintf("web-%d", i), append([]slotOpt{created(t0.Add(-time.Hour + time.Duration(i)*time.Second))}, opts...)...)
	}
	return out
}
