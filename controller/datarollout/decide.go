package datarollout

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/spec"
)

// Reason is an Event reason of the rollout.
type Reason string

// The reasons, one per step of a rollout.
const (
	ReasonAdopted        Reason = "DataAdopted"
	ReasonRolloutStarted Reason = "DataRolloutStarted"
	ReasonWaveStarted    Reason = "DataWaveStarted"
	ReasonWaveExtended   Reason = "DataWaveExtended"
	ReasonWavePassed     Reason = "DataWavePassed"
	ReasonWaveFailed     Reason = "DataWaveFailed"
	ReasonRolledBack     Reason = "DataRolledBack"
	ReasonPromoted       Reason = "DataPromoted"
)

// Input is everything Decide reads about one line, already fetched.
type Input struct {
	Now  time.Time
	Line Line
	// State is the persisted state; Persisted is false when no ConfigMap
	// exists yet.
	State     State
	Persisted bool
	Control   Control
	// Slots are the line's (pod, data deployment) pairs, terminating pods
	// included: a pod evicted for an error still tells of the error.
	Slots   []Slot
	Catalog Catalog
	// ProgressDeadline: a wave whose pods are not all live this long after
	// it asked for the version fails.
	ProgressDeadline time.Duration
}

// Slot is one data deployment of one pod.
type Slot struct {
	Pod     types.NamespacedName
	UID     types.UID
	Created time.Time
	Group   Group
	// Rollout is the pod's rollout.data.autocrane.io/* settings.
	Rollout spec.Rollout
	// Request and Status are the raw request.data and status.data values;
	// empty when absent.
	Request string
	Status  string
	// Health is the status.autocrane.io/health label; ErrorSince is when
	// its error began (zero when not known).
	Health      string
	ErrorSince  time.Time
	Ready       bool
	Terminating bool
}

// Group is the pods of one controller owner that feed one data deployment.
type Group struct {
	Key string
	// Owner is the pods' controller; nil for bare pods.
	Owner      *metav1.OwnerReference
	Deployment string
}

// GroupOf is the group of a pod's data deployment.
func GroupOf(owner *metav1.OwnerReference, deployment string) Group {
	uid := "none"
	if owner != nil {
		uid = string(owner.UID)
	}
	return Group{Key: uid + "/" + deployment, Owner: owner, Deployment: deployment}
}

func (g Group) ownerName() string {
	if g.Owner == nil {
		return "pods without a controller"
	}
	return g.Owner.Kind + "/" + g.Owner.Name
}

// Catalog is what the repository says of the line's source.
type Catalog struct {
	// Reachable is false when the repository could not be asked: nothing
	// moves forward then, but rollbacks still happen.
	Reachable bool
	// Versions are sorted oldest first.
	Versions []Version
	// Pins are the pinned version ids.
	Pins []string
}

// Decision is what to do for one line now.
type Decision struct {
	// State is the state to persist (written before anything else).
	State State
	// Changes are the request.data keys to write.
	Changes []RequestChange
	Events  []Event
	// RequeueAfter is when to decide again at the latest; 0: no deadline.
	RequeueAfter time.Duration
	// Pins are the versions of this line the repository must keep.
	Pins []string
	// Finished is set when a rollout ended.
	Finished *Finished
	// Stalled says why a rollout cannot move forward, for the log.
	Stalled string
}

// RequestChange sets (To) or removes (To == "") one pod's request.
type RequestChange struct {
	Pod        types.NamespacedName
	UID        types.UID
	Deployment string
	From, To   string
	// Forward is true when the pod moves to the rolling version: such a
	// change waits for the version to be pinned.
	Forward bool
}

// Event is one Event to record on the owners of Groups (and Pod, if set).
type Event struct {
	Groups  []Group
	Pod     *types.NamespacedName
	Type    string
	Reason  Reason
	Message string
}

// Rollout results, the values of the metrics' result label.
const (
	ResultPromoted = "promoted"
	ResultFailed   = "failed"
)

// Finished is a rollout that ended, for the duration metric.
type Finished struct {
	Result   string
	Duration time.Duration
}

// decider holds one Decide call's working state.
type decider struct {
	in  Input
	st  State
	out Decision
	// live are the indexes of the slots that are not terminating, sorted.
	live []int
	// groups are the groups of live slots, sorted by key.
	groups []*groupView
	req    []*Version
	status []*spec.DataStatus
	// onCand marks the slots that are to hold the rolling version.
	onCand  []bool
	catalog map[string]int
}

type groupView struct {
	Group
	slots   []int
	rollout spec.Rollout
}

// Decide is the rollout's decision for one line. It is pure: the same input
// gives the same decision. Its order is the order of precedence: safety
// (operator rejects, errors on the rolling version) before progress, and
// every pod's request is made to agree with the resulting state last.
func Decide(in Input) Decision {
	d := &decider{in: in, st: in.State.Clone()}
	d.st.Line = in.Line
	d.index()
	d.adopt()
	d.applyRejects()
	d.detectErrors()
	if reason := d.holdReason(); reason != "" {
		if d.st.Rollout != nil && d.out.Stalled == "" {
			d.out.Stalled = reason
		}
	} else {
		d.checkDeadlines()
		d.progress()
	}
	d.enforce()
	d.out.State = d.st
	d.out.Pins = d.st.Pins()
	return d.out
}

// index parses every slot once and groups the live ones.
func (d *decider) index() {
	slots := d.in.Slots
	d.req = make([]*Version, len(slots))
	d.status = make([]*spec.DataStatus, len(slots))
	d.onCand = make([]bool, len(slots))
	byKey := map[string]*groupView{}
	for i := range slots {
		s := &slots[i]
		if r, err := spec.ParseDataRequest(s.Request); err == nil && r.Source == d.in.Line.Source {
			d.req[i] = &Version{ID: r.ID, Digest: r.Digest}
		}
		if st, err := spec.ParseDataStatus(s.Status); err == nil {
			d.status[i] = &st
		}
		if s.Terminating {
			continue
		}
		d.live = append(d.live, i)
		if d.st.Rollout != nil && d.req[i] != nil && *d.req[i] == d.st.Rollout.Version {
			d.onCand[i] = true
		}
	}
	slices.SortFunc(d.live, func(a, b int) int { return cmp.Compare(slots[a].Pod.String(), slots[b].Pod.String()) })
	for _, i := range d.live {
		g := byKey[slots[i].Group.Key]
		if g == nil {
			// The first pod by name gives the group's settings: pods of
			// one owner share a template.
			g = &groupView{Group: slots[i].Group, rollout: slots[i].Rollout}
			if len(g.rollout.Waves) == 0 {
				g.rollout = spec.DefaultRollout()
			}
			byKey[g.Key] = g
			d.groups = append(d.groups, g)
		}
		g.slots = append(g.slots, i)
	}
	slices.SortFunc(d.groups, func(a, b *groupView) int { return cmp.Compare(a.Key, b.Key) })
	d.catalog = make(map[string]int, len(d.in.Catalog.Versions))
	for i, v := range d.in.Catalog.Versions {
		d.catalog[v.ID] = i
	}
}

// adopt takes the version most pods already request as the last known good
// one when a line has no state yet: pods that predate the controller (or a
// deleted state ConfigMap) keep what they have instead of waiting for waves.
func (d *decider) adopt() {
	if d.in.Persisted || !d.st.Empty() {
		return
	}
	counts := map[Version]int{}
	for _, i := range d.live {
		if v := d.req[i]; v != nil {
			counts[*v]++
		}
	}
	if len(counts) == 0 {
		return
	}
	var best Version
	for v, n := range counts {
		if n > counts[best] || n == counts[best] && (best.ID == "" || v.ID < best.ID) {
			best = v
		}
	}
	d.st.LKG = &Promoted{Version: best, Since: d.in.Now}
	d.event(nil, corev1.EventTypeNormal, ReasonAdopted,
		fmt.Sprintf("source %s had no rollout state: taking version %s, which %d of %d pods request, as the last known good version", d.in.Line.Source, best.ID, counts[best], len(d.live)))
}

// applyRejects carries out the operator's reject list.
func (d *decider) applyRejects() {
	for _, id := range d.in.Control.Reject {
		if r := d.st.Rollout; r != nil && r.ID == id {
			d.fail(nil, nil, "rejected by an operator ("+KeyReject+" in the state ConfigMap)")
		}
		lkg := d.st.LKG
		if lkg == nil || lkg.ID != id {
			continue
		}
		prev := d.st.Previous
		if prev == nil || d.rejected(prev.ID) || d.st.IsBad(prev.ID) {
			d.out.Stalled = fmt.Sprintf("version %s is rejected, but it is the last known good version and there is no previous one to go back to", id)
			continue
		}
		d.markBad(lkg.Version, "rejected by an operator after promotion")
		d.st.LKG, d.st.Previous = &Promoted{Version: prev.Version, Since: d.in.Now}, nil
		d.out.Events = append(d.out.Events, Event{Groups: d.allGroups(), Type: corev1.EventTypeWarning, Reason: ReasonRolledBack,
			Message: fmt.Sprintf("version %s of source %s was rejected by an operator: rolling %d pods back to the previous version %s", id, d.in.Line.Source, d.countRequesting(lkg.Version), prev.ID)})
	}
}

func (d *decider) rejected(id string) bool { return slices.Contains(d.in.Control.Reject, id) }

// detectErrors fails the rollout when a pod holding the rolling version is
// in error, unless its error began before the version went live on it.
func (d *decider) detectErrors() {
	r := d.st.Rollout
	if r == nil {
		return
	}
	for i := range d.in.Slots {
		s, st := &d.in.Slots[i], d.status[i]
		if s.Health != string(spec.LevelError) || st == nil || st.Version != r.ID || st.Digest != r.Digest {
			continue
		}
		if !s.ErrorSince.IsZero() && !st.Since.IsZero() && s.ErrorSince.Before(st.Since) {
			continue
		}
		g := s.Group
		pod := s.Pod
		d.fail(&g, &pod, fmt.Sprintf("pod %s went to error on version %s", s.Pod.Name, r.ID))
		return
	}
}

// holdReason says why nothing may move forward now, or "".
func (d *decider) holdReason() string {
	switch {
	case d.in.Control.Paused:
		return "paused (" + KeyPaused + " in the state ConfigMap)"
	case !d.in.Catalog.Reachable:
		return "the data repository cannot be reached"
	case d.st.Rollout != nil:
		if _, ok := d.catalog[d.st.Rollout.ID]; !ok {
			return fmt.Sprintf("the data repository no longer lists version %s", d.st.Rollout.ID)
		}
	}
	return ""
}

// fail ends the rollout: the version becomes bad, and enforce moves every
// pod on it back to the last known good version.
func (d *decider) fail(g *Group, pod *types.NamespacedName, why string) {
	r := d.st.Rollout
	if r == nil {
		return
	}
	n := d.countRequesting(r.Version)
	d.markBad(r.Version, why)
	d.out.Finished = &Finished{Result: ResultFailed, Duration: d.in.Now.Sub(r.Started)}
	d.st.Rollout = nil
	clear(d.onCand)
	if g != nil {
		wave := "its wave"
		for _, gv := range d.groups {
			if gv.Key == g.Key {
				wave = d.waveName(gv, r.Groups[g.Key].Wave)
			}
		}
		d.out.Events = append(d.out.Events, Event{Groups: []Group{*g}, Pod: pod, Type: corev1.EventTypeWarning, Reason: ReasonWaveFailed,
			Message: fmt.Sprintf("%s of version %s failed: %s", wave, r.ID, why)})
	}
	msg := fmt.Sprintf("version %s of source %s failed (%s) and will not be retried: ", r.ID, d.in.Line.Source, why)
	if lkg := d.st.LKG; lkg != nil {
		msg += fmt.Sprintf("rolling %d pods back to the last known good version %s", n, lkg.ID)
	} else {
		msg += fmt.Sprintf("there is no last known good version, so the request of its %d pods is removed (they keep the data they hold)", n)
	}
	d.out.Events = append(d.out.Events, Event{Groups: d.allGroups(), Pod: pod, Type: corev1.EventTypeWarning, Reason: ReasonRolledBack, Message: msg})
}

func (d *decider) markBad(v Version, why string) {
	if d.st.IsBad(v.ID) {
		return
	}
	d.st.Bad = append(d.st.Bad, BadVersion{Version: v, At: d.in.Now, Reason: spec.SanitizeMessage(why)})
	if len(d.st.Bad) > maxBad {
		d.st.Bad = d.st.Bad[len(d.st.Bad)-maxBad:]
	}
}

// countRequesting counts the live slots that request v.
func (d *decider) countRequesting(v Version) int {
	n := 0
	for _, i := range d.live {
		if d.req[i] != nil && *d.req[i] == v {
			n++
		}
	}
	return n
}

// enforce makes every live slot's request agree with the state: the rolling
// version for the slots chosen for it, else the last known good version.
// Without one, a request for a bad version is removed and others are left.
func (d *decider) enforce() {
	src := d.in.Line.Source
	for _, i := range d.live {
		s := &d.in.Slots[i]
		want := s.Request
		switch r := d.req[i]; {
		case d.onCand[i]:
			want = d.st.Rollout.Request(src)
		case d.st.LKG != nil:
			want = d.st.LKG.Request(src)
		case r != nil && (d.st.IsBad(r.ID) || d.rejected(r.ID)):
			want = ""
		}
		if want != s.Request {
			d.out.Changes = append(d.out.Changes, RequestChange{Pod: s.Pod, UID: s.UID, Deployment: s.Group.Deployment, From: s.Request, To: want, Forward: d.onCand[i]})
		}
	}
}

// newer reports whether a is newer than b: by the repository's order when
// it lists both, else by id (the repository's ids sort by creation time).
func (d *decider) newer(a, b Version) bool {
	ia, okA := d.catalog[a.ID]
	ib, okB := d.catalog[b.ID]
	if okA && okB {
		return ia > ib
	}
	return a.ID > b.ID
}

func (d *decider) allGroups() []Group {
	out := make([]Group, len(d.groups))
	for i, g := range d.groups {
		out[i] = g.Group
	}
	return out
}

func (d *decider) event(groups []Group, kind string, reason Reason, msg string) {
	if groups == nil {
		groups = d.allGroups()
	}
	d.out.Events = append(d.out.Events, Event{Groups: groups, Type: kind, Reason: reason, Message: msg})
}

func (d *decider) requeue(after time.Duration) {
	if after <= 0 {
		after = time.Second
	}
	if d.out.RequeueAfter == 0 || after < d.out.RequeueAfter {
		d.out.RequeueAfter = after
	}
}
