package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// dataRolloutController is the reporting controller of the data rollout's
// Events.
const dataRolloutController = "autocrane-data-rollout"

// dataWatch prints what happens on the story's data line, in the order the
// watches saw it (see timeline): each pod's request and status, its
// health, the data rollout controller's Events, the line's state, and the
// file each pod's app reads. Versions are named by their content (v1,
// v2, ...).
type dataWatch struct {
	world   *dataWorld
	env     *framework.Env
	kubelet *fakeKubelet
	// start is what the printed times count from.
	start  time.Time
	next   int                // the next change of the timeline to print
	shown  map[string]podData // per pod, as last printed
	series map[types.UID]int32
	// noted counts, by reason, the Events whose note named a version.
	noted map[string]map[string]int
	state *datarollout.State // as last read; nil before the first write
	// summary is the state, as last printed.
	summary string
	// wallClock prints times of day instead of times since start.
	wallClock bool
	// seriesExplained: the first repeat of an Event said what a series is.
	seriesExplained bool
}

// podData is one reader pod as the story shows it.
type podData struct {
	ip      string
	request string // the version requested, by name; "" for none
	status  string // the status annotation, described
	live    string // the version live according to the status, by name
	health  string
	file    string // versionFile as the app reads it
}

func newDataWatch(w *dataWorld, env *framework.Env, kubelet *fakeKubelet) *dataWatch {
	return &dataWatch{world: w, env: env, kubelet: kubelet, start: time.Now(), shown: map[string]podData{}, series: map[types.UID]int32{},
		noted: map[string]map[string]int{}}
}

// restart makes the printed times count from now.
func (d *dataWatch) restart() { d.start = time.Now() }

// until prints every change until cond holds (returns nil), or fails
// after rolloutTimeout with what cond last said was missing.
func (d *dataWatch) until(ctx context.Context, step *stepper, what string, cond func() error) error {
	err := poll(ctx, rolloutTimeout, func() (bool, error) {
		if err := d.observe(step); err != nil {
			return false, err
		}
		if err := cond(); err != nil {
			return false, err
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s (state: %s): %w", what, d.summary, err)
	}
	return nil
}

// at prints a line stamped with the time since start.
func (d *dataWatch) at(step *stepper, when time.Time, format string, args ...any) {
	if d.wallClock {
		step.done("%s %s", when.Format(time.TimeOnly), fmt.Sprintf(format, args...))
		return
	}
	step.done("%-6s %s", fmt.Sprintf("%+.1fs", when.Sub(d.start).Seconds()), fmt.Sprintf(format, args...))
}

func (d *dataWatch) name(id string) string { return d.world.names.name(id) }

func (d *dataWatch) named(text string) string { return d.world.names.named(text) }

// observe prints the timeline's new changes, then the files that changed.
func (d *dataWatch) observe(step *stepper) error {
	if err := d.world.downward.check(); err != nil {
		return err
	}
	if err := d.kubelet.exited(); err != nil {
		return err
	}
	changes, next := d.world.timeline.since(d.next)
	d.next = next
	for _, c := range changes {
		switch {
		case c.pod != nil:
			d.observePod(step, c.at, c.pod)
		case c.event != nil:
			d.observeEvent(step, c.at, c.event)
		case c.configMap != nil:
			if err := d.observeState(step, c.at, c.configMap); err != nil {
				return err
			}
		}
	}
	now := time.Now()
	for _, name := range d.podNames() {
		pd := d.shown[name]
		if file := d.kubelet.dataFile(name, dataSource, versionFile); file != pd.file {
			pd.file = file
			d.shown[name] = pd
			d.at(step, now, "pod %s: its app reads %s/%s: %s", name, dataSource, versionFile, orNone(file))
		}
	}
	return nil
}

func (d *dataWatch) observePod(step *stepper, at time.Time, p *corev1.Pod) {
	if p.Labels["app"] != dataApp {
		return
	}
	before := d.shown[p.Name]
	now := d.podData(p)
	now.file = before.file
	// In causal order: what the pod holds, how its watchdogs judge it,
	// then what AutoCrane asks of it.
	if now.status != before.status {
		d.at(step, at, "pod %s: %s%s: %s", p.Name, spec.PrefixDataStatus, dataSource, orNone(now.status))
	}
	if now.health != before.health {
		d.at(step, at, "pod %s: label %s=%s", p.Name, spec.LabelHealth, orNone(now.health))
	}
	if now.request != before.request {
		d.at(step, at, "pod %s: %s%s asks for %s", p.Name, spec.PrefixDataRequest, dataSource, orNone(now.request))
	}
	d.shown[p.Name] = now
}

func (d *dataWatch) podData(p *corev1.Pod) podData {
	pd := podData{ip: p.Status.PodIP, health: p.Labels[spec.LabelHealth]}
	if v := p.Annotations[spec.PrefixDataRequest+dataSource]; v != "" {
		if r, err := spec.ParseDataRequest(v); err == nil {
			pd.request = d.name(r.ID)
		} else {
			pd.request = fmt.Sprintf("%q (%v)", v, err)
		}
	}
	if v := p.Annotations[spec.PrefixDataStatus+dataSource]; v != "" {
		st, err := spec.ParseDataStatus(v)
		if err != nil {
			pd.status = fmt.Sprintf("%q (%v)", v, err)
			return pd
		}
		held := "nothing"
		if st.Version != "" {
			held = d.name(st.Version)
		}
		switch st.State {
		case spec.DataLive:
			pd.live = held
			pd.status = fmt.Sprintf("live %s since %s", held, st.Since.Local().Format(time.TimeOnly))
		default:
			pd.status = fmt.Sprintf("%s, holding %s", st.State, held)
		}
		if st.Message != "" {
			pd.status += ": " + d.named(st.Message)
		}
	}
	return pd
}

// observeEvent prints a data rollout Event once, and again each time
// events.k8s.io counts a repeat of it in a series.
func (d *dataWatch) observeEvent(step *stepper, at time.Time, e *eventsv1.Event) {
	if e.ReportingController != dataRolloutController {
		return
	}
	count := int32(1)
	if e.Series != nil {
		count = e.Series.Count
	}
	seen, known := d.series[e.UID]
	if known && count <= seen {
		return
	}
	d.series[e.UID] = count
	related := ""
	if e.Related != nil {
		related = fmt.Sprintf(" (pod %s)", e.Related.Name)
	}
	if !known {
		note := d.named(e.Note)
		d.at(step, at, "Event %s on %s %s%s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, related, note)
		if d.noted[e.Reason] == nil {
			d.noted[e.Reason] = map[string]int{}
		}
		for _, name := range d.world.names {
			if strings.Contains(note, "version "+name+" ") {
				d.noted[e.Reason][name]++
			}
		}
		return
	}
	d.at(step, at, "Event %s on %s %s%s again: series count %d", e.Reason, e.Regarding.Kind, e.Regarding.Name, related, count)
	if !d.seriesExplained {
		d.seriesExplained = true
		step.done("        (events.k8s.io folds an Event that repeats within 6 minutes into a series: the recorder writes its count at 2,")
		step.done("        then only when the series ends or every 30 minutes)")
	}
}

func (d *dataWatch) observeState(step *stepper, at time.Time, cm *corev1.ConfigMap) error {
	line := d.world.line()
	if cm.Name != line.Name() {
		return nil
	}
	st, err := datarollout.ParseState(cm.Data[datarollout.KeyState], line)
	if err != nil {
		return fmt.Errorf("state ConfigMap %s/%s: %w", ownNamespace, cm.Name, err)
	}
	d.state = &st
	if s := d.describeState(st); s != d.summary {
		d.summary = s
		d.at(step, at, "state ConfigMap %s/%s: %s", ownNamespace, cm.Name, s)
	}
	return nil
}

func (d *dataWatch) podNames() []string {
	names := make([]string, 0, len(d.shown))
	for n := range d.shown {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// describeState summarizes a line's state: its last known good version,
// the version rolling out and how far, and the bad versions.
func (d *dataWatch) describeState(st datarollout.State) string {
	var parts []string
	if st.LKG != nil {
		parts = append(parts, "last known good "+d.name(st.LKG.ID))
	} else {
		parts = append(parts, "no last known good version")
	}
	if r := st.Rollout; r != nil {
		keys := make([]string, 0, len(r.Groups))
		for k := range r.Groups {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var groups []string
		for _, k := range keys {
			g := r.Groups[k]
			if g.Done {
				groups = append(groups, g.Owner+" done")
			} else {
				groups = append(groups, fmt.Sprintf("%s at wave %d", g.Owner, g.Wave+1))
			}
		}
		parts = append(parts, fmt.Sprintf("rolling out %s (%s)", d.name(r.ID), strings.Join(groups, ", ")))
	}
	if len(st.Bad) > 0 {
		var bad []string
		for _, b := range st.Bad {
			bad = append(bad, d.name(b.ID))
		}
		parts = append(parts, "bad: "+strings.Join(bad, ", "))
	}
	return strings.Join(parts, "; ")
}

// settledOn holds once version name is the line's last known good
// version, nothing rolls out, every pod requests it, holds it live and its
// app reads it, and the Events saying so were seen: one for each wave that
// passed (3: the 4 pods' waves 1, 2 and 4 go 1, 1, 2, 4 pods, and the
// second adds none, so it passes with the first) and the promotion.
func (d *dataWatch) settledOn(name string) func() error {
	return func() error {
		st := d.state
		switch {
		case st == nil || st.Rollout != nil || st.LKG == nil || d.name(st.LKG.ID) != name:
			return fmt.Errorf("the state is not settled on %s", name)
		case !d.allOn(name):
			return fmt.Errorf("not every pod asks for %s, holds it live and reads it: %v", name, d.shown)
		}
		return d.eventsSeen(name, map[datarollout.Reason]int{datarollout.ReasonWavePassed: 3, datarollout.ReasonPromoted: 1})
	}
}

// rolledBack holds once version bad is marked bad, nothing rolls out,
// every pod is back on good, and the Events saying so were seen.
func (d *dataWatch) rolledBack(bad, good string) func() error {
	return func() error {
		st := d.state
		if st == nil || st.Rollout != nil || st.LKG == nil || d.name(st.LKG.ID) != good {
			return fmt.Errorf("the state is not settled on %s", good)
		}
		marked := false
		for _, b := range st.Bad {
			marked = marked || d.name(b.ID) == bad
		}
		switch {
		case !marked:
			return fmt.Errorf("%s is not marked bad", bad)
		case !d.allOn(good):
			return fmt.Errorf("not every pod asks for %s, holds it live and reads it: %v", good, d.shown)
		}
		return d.eventsSeen(bad, map[datarollout.Reason]int{datarollout.ReasonWaveFailed: 1, datarollout.ReasonRolledBack: 1})
	}
}

// eventsSeen says which of the wanted Events (how many of each reason)
// about version name were not seen yet.
func (d *dataWatch) eventsSeen(name string, want map[datarollout.Reason]int) error {
	var missing []string
	for reason, n := range want {
		if got := d.noted[string(reason)][name]; got < n {
			missing = append(missing, fmt.Sprintf("%d of %d %s Events", got, n, reason))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("about %s, seen only %s", name, strings.Join(missing, ", "))
	}
	return nil
}

func (d *dataWatch) allOn(name string) bool {
	if len(d.shown) != dataReplicas {
		return false
	}
	for _, p := range d.shown {
		if p.request != name || p.live != name || p.file != name {
			return false
		}
	}
	return true
}

// fileReadBy is the first pod, by name, whose app reads version name; ""
// for none.
func (d *dataWatch) fileReadBy(name string) string {
	for _, n := range d.podNames() {
		if d.shown[n].file == name {
			return n
		}
	}
	return ""
}

// showPods prints the reader's pods as a table; raw adds each pod's data
// annotations as they are.
func (d *dataWatch) showPods(step *stepper, raw bool) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "POD\tIP\tHEALTH\tREQUEST\tSTATUS\t%s/%s\n", dataSource, versionFile)
	for _, n := range d.podNames() {
		p := d.shown[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n, p.ip, orNone(p.health), orNone(p.request), orNone(p.status), orNone(p.file))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	step.output(b.String())
	if !raw {
		return nil
	}
	pods, err := d.world.timeline.readers()
	if err != nil {
		return err
	}
	for _, p := range pods {
		step.done("pod %s:", p.Name)
		step.output(fmt.Sprintf("%s%s: %s\n%s%s: %s\n%s: %s",
			spec.PrefixDataRequest, dataSource, p.Annotations[spec.PrefixDataRequest+dataSource],
			spec.PrefixDataStatus, dataSource, p.Annotations[spec.PrefixDataStatus+dataSource],
			d.kubelet.dataPath(p.Name, dataSource, versionFile), d.shown[p.Name].file))
	}
	return nil
}

// showState prints the line's state ConfigMap and what it says.
func (d *dataWatch) showState(ctx context.Context, step *stepper) error {
	step.done("kubectl -n %s get configmaps -l %s=true -L %s,%s:", ownNamespace, datarollout.LabelState, datarollout.LabelNamespace, datarollout.LabelSource)
	stdout, stderr, err := d.env.Kubectl(ctx, nil, "-n", ownNamespace, "get", "configmaps", "-l", datarollout.LabelState+"=true",
		"-L", datarollout.LabelNamespace+","+datarollout.LabelSource)
	if err != nil {
		return fmt.Errorf("kubectl get configmaps: %w\n%s", err, stderr)
	}
	step.output(stdout)
	st := d.state
	if st == nil {
		return fmt.Errorf("no state ConfigMap for %s", d.world.line())
	}
	step.done("its %s, for people:", datarollout.KeyState)
	var lines []string
	if st.LKG != nil {
		lines = append(lines, fmt.Sprintf("last known good: %s (%s), since %s", d.name(st.LKG.ID), st.LKG.ID, st.LKG.Since.Local().Format(time.TimeOnly)))
	}
	if st.Previous != nil {
		lines = append(lines, fmt.Sprintf("previous:        %s (%s)", d.name(st.Previous.ID), st.Previous.ID))
	}
	for _, b := range st.Bad {
		lines = append(lines, fmt.Sprintf("bad:             %s (%s), at %s: %s", d.name(b.ID), b.ID, b.At.Local().Format(time.TimeOnly), d.named(b.Reason)))
	}
	step.output(strings.Join(lines, "\n"))
	return nil
}

// dataColumns is a kubectl custom-columns view of the reader's pods.
const dataColumns = `NAME:.metadata.name,HEALTH:.metadata.labels.status\.autocrane\.io/health,` +
	`REQUEST:.metadata.annotations.request\.data\.autocrane\.io/models,` +
	`STATUS:.metadata.annotations.status\.data\.autocrane\.io/models`
