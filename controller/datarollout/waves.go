package datarollout

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/autocrane/autocrane/spec"
)

// progress starts a rollout of the newest version when there is none, moves
// each group through its waves, and promotes the version when every group
// is done.
func (d *decider) progress() {
	if d.st.Rollout == nil && !d.start() {
		return
	}
	r := d.st.Rollout
	if r.Groups == nil {
		r.Groups = map[string]GroupProgress{}
	}
	present := map[string]bool{}
	for _, g := range d.groups {
		present[g.Key] = true
		gp, ok := r.Groups[g.Key]
		if !ok {
			gp = GroupProgress{Owner: g.ownerName(), Requested: d.in.Now}
		}
		d.advance(g, &gp, !ok)
		r.Groups[g.Key] = gp
	}
	// A group whose pods are all gone (an old ReplicaSet scaled to zero)
	// has nothing left to judge.
	for k := range r.Groups {
		if !present[k] {
			delete(r.Groups, k)
		}
	}
	if len(r.Groups) == 0 {
		return
	}
	for _, gp := range r.Groups {
		if !gp.Done {
			return
		}
	}
	d.promote()
}

// start begins a rollout of the newest version, when it is newer than the
// last known good one, not bad, not rejected, and some pod would take it.
// Only the newest is considered: when it is bad, an older version is not
// shipped in its place; the line waits for a newer one.
func (d *decider) start() bool {
	vs := d.in.Catalog.Versions
	if len(vs) == 0 || len(d.live) == 0 {
		return false
	}
	newest := vs[len(vs)-1]
	if d.st.IsBad(newest.ID) || d.rejected(newest.ID) {
		return false
	}
	if lkg := d.st.LKG; lkg != nil && (lkg.Version == newest || !d.newer(newest, lkg.Version)) {
		return false
	}
	d.st.Rollout = &Rollout{Version: newest, Started: d.in.Now, Groups: map[string]GroupProgress{}}
	from := "no last known good version"
	if lkg := d.st.LKG; lkg != nil {
		from = "last known good version " + lkg.ID
	}
	d.event(nil, corev1.EventTypeNormal, ReasonRolloutStarted,
		fmt.Sprintf("rolling out version %s of source %s (%s) to %d pods in %d groups, in waves", newest.ID, d.in.Line.Source, from, len(d.live), len(d.groups)))
	return true
}

// advance moves one group through its waves as far as it can go now. A
// wave asks enough pods for the version to reach its size, waits until
// they all hold it live, then bakes: it passes once no pod erred for the
// bake time after the version went live on its last pod (or after the wave
// asked, if that is later: a pod's clock may lag, and a version whose
// content a pod already held keeps the old time).
func (d *decider) advance(g *groupView, gp *GroupProgress, entered bool) {
	if gp.Done {
		return
	}
	waves, bake := g.rollout.Waves, g.rollout.Bake
	gp.Wave = min(gp.Wave, len(waves)-1)
	total := len(g.slots)
	for {
		target := waves[gp.Wave].Size(total)
		on := d.candidateSlots(g)
		if len(on) < target {
			d.choose(g, target-len(on))
			gp.Requested = d.in.Now
			reason, verb := ReasonWaveExtended, "extending"
			if entered {
				reason, verb = ReasonWaveStarted, "starting"
			}
			d.event([]Group{g.Group}, corev1.EventTypeNormal, reason, fmt.Sprintf("%s %s of version %s: asking %d more pods, %d of %d pods of %s on it",
				verb, d.waveName(g, gp.Wave), d.st.Rollout.ID, target-len(on), target, total, g.ownerName()))
			d.requeue(d.in.ProgressDeadline)
			return
		}
		bakeStart, live := gp.Requested, true
		for _, i := range on {
			st := d.status[i]
			if !d.holdsLive(i) {
				live = false
				break
			}
			if st.Since.After(bakeStart) {
				bakeStart = st.Since
			}
		}
		if !live {
			d.requeue(gp.Requested.Add(d.in.ProgressDeadline).Sub(d.in.Now))
			return
		}
		if due := bakeStart.Add(bake); d.in.Now.Before(due) {
			d.requeue(due.Sub(d.in.Now))
			return
		}
		d.event([]Group{g.Group}, corev1.EventTypeNormal, ReasonWavePassed, fmt.Sprintf("%s of version %s passed: %d of %d pods live on it since %s, none in error for %s",
			d.waveName(g, gp.Wave), d.st.Rollout.ID, len(on), total, bakeStart.UTC().Format("2006-01-02T15:04:05Z"), bake))
		// Waves that need no more pods than are on the version already
		// pass with this bake.
		next := gp.Wave + 1
		for next < len(waves) && waves[next].Size(total) <= len(on) {
			next++
		}
		if next == len(waves) {
			gp.Done = true
			return
		}
		gp.Wave, entered = next, true
	}
}

// checkDeadlines fails the rollout when a wave's pods did not all hold the
// version live within the progress deadline.
func (d *decider) checkDeadlines() {
	r := d.st.Rollout
	if r == nil || d.in.ProgressDeadline <= 0 {
		return
	}
	for _, g := range d.groups {
		gp, ok := r.Groups[g.Key]
		if !ok || gp.Done || d.in.Now.Before(gp.Requested.Add(d.in.ProgressDeadline)) {
			continue
		}
		on := d.candidateSlots(g)
		waiting := 0
		for _, i := range on {
			if !d.holdsLive(i) {
				waiting++
			}
		}
		if waiting > 0 {
			d.fail(&g.Group, nil, fmt.Sprintf("%d of %d pods of %s did not hold it live within %s", waiting, len(on), g.ownerName(), d.in.ProgressDeadline))
			return
		}
	}
}

// holdsLive reports whether slot i holds the rolling version live.
func (d *decider) holdsLive(i int) bool {
	st, r := d.status[i], d.st.Rollout
	return st != nil && st.State == spec.DataLive && st.Version == r.ID && st.Digest == r.Digest
}

func (d *decider) candidateSlots(g *groupView) []int {
	var out []int
	for _, i := range g.slots {
		if d.onCand[i] {
			out = append(out, i)
		}
	}
	return out
}

// choose marks n more slots of g for the rolling version: healthy before
// erring pods, Ready before not Ready, the oldest first, then by name.
func (d *decider) choose(g *groupView, n int) {
	var pool []int
	for _, i := range g.slots {
		if !d.onCand[i] {
			pool = append(pool, i)
		}
	}
	slots := d.in.Slots
	rank := func(i int) (int, int) {
		e, r := 0, 0
		if slots[i].Health == string(spec.LevelError) {
			e = 1
		}
		if !slots[i].Ready {
			r = 1
		}
		return e, r
	}
	slices.SortStableFunc(pool, func(a, b int) int {
		ea, ra := rank(a)
		eb, rb := rank(b)
		return cmp.Or(cmp.Compare(ea, eb), cmp.Compare(ra, rb),
			slots[a].Created.Compare(slots[b].Created), cmp.Compare(slots[a].Pod.Name, slots[b].Pod.Name))
	})
	for _, i := range pool[:min(n, len(pool))] {
		d.onCand[i] = true
	}
}

// promote makes the rolling version the last known good one.
func (d *decider) promote() {
	r := d.st.Rollout
	old := d.st.LKG
	d.st.Previous = old
	d.st.LKG = &Promoted{Version: r.Version, Since: d.in.Now}
	d.st.Rollout = nil
	clear(d.onCand)
	d.out.Finished = &Finished{Result: ResultPromoted, Duration: d.in.Now.Sub(r.Started)}
	// A bad version older than the last known good one can never be
	// chosen again; forget it.
	d.st.Bad = slices.DeleteFunc(d.st.Bad, func(b BadVersion) bool { return d.newer(r.Version, b.Version) })
	was := "there was none"
	if old != nil {
		was = "it was " + old.ID
	}
	d.event(nil, corev1.EventTypeNormal, ReasonPromoted, fmt.Sprintf("version %s of source %s is the last known good version (%s): every wave of %d groups baked clean",
		r.ID, d.in.Line.Source, was, len(r.Groups)))
}

// waveName names wave i of g's rollout, as "wave 2 of 4 (10%)".
func (d *decider) waveName(g *groupView, i int) string {
	waves := g.rollout.Waves
	if i < 0 || i >= len(waves) {
		return fmt.Sprintf("wave %d", i+1)
	}
	return fmt.Sprintf("wave %d of %d (%s)", i+1, len(waves), waves[i])
}
