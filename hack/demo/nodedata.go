package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/sidecars/datarepository"
	"github.com/autocrane/autocrane/spec"
)

// nodeData is the data story on a real cluster: config/samples' web pods
// read data deployment "models", from the repository pod, which follows
// the demo's http source.
type nodeData struct {
	n      *nodeCluster
	host   nodeHost
	source *httpSource
	repo   *datarepository.Client
	names  versionNames
	watch  *nodeDataWatch
}

// startRepository waits for the repository pod and its first version.
func (d *nodeData) startRepository(ctx context.Context, step *stepper) error {
	step.say("The data repository runs as a pod in %s (Service datarepository:%d, config/samples' store URL) and follows the source",
		demoNamespace, repositoryPort)
	var pod *corev1.Pod
	if err := poll(ctx, runningTimeout, func() (bool, error) {
		var list corev1.PodList
		if err := d.n.client.List(ctx, &list, client.InNamespace(demoNamespace), client.MatchingLabels{"app": "datarepository"}); err != nil {
			return false, err
		}
		for i := range list.Items {
			if err := stuck(&list.Items[i]); err != nil {
				return false, err
			}
			if list.Items[i].Status.PodIP != "" && controller.PodReady(&list.Items[i]) {
				pod = &list.Items[i]
				return true, nil
			}
		}
		return false, errors.New("no Ready datarepository pod yet")
	}); err != nil {
		return fmt.Errorf("wait for the data repository: %w", err)
	}
	url := fmt.Sprintf("http://%s:9790", pod.Status.PodIP)
	d.repo = &datarepository.Client{BaseURL: url, HTTP: d.host.http}
	st, err := d.waitVersions(ctx, 1)
	if err != nil {
		return err
	}
	d.names = versionNames{st.Versions[0].ID: "v1"}
	step.done("pod %s: %s", pod.Name, describeRunning(pod))
	step.done("GET %s/v1/sources/%s: a %s source (%s), %d version:", url, dataSource, st.Kind, st.Location, len(st.Versions))
	printVersions(step, st, d.names)
	return nil
}

// waitVersions waits until the source has n versions.
func (d *nodeData) waitVersions(ctx context.Context, n int) (datarepository.SourceStatus, error) {
	var st datarepository.SourceStatus
	err := poll(ctx, time.Minute, func() (bool, error) {
		var err error
		st, err = d.repo.Source(ctx, dataSource)
		return err == nil && len(st.Versions) >= n, err
	})
	if err != nil {
		return st, fmt.Errorf("wait for %d versions of source %s: %w", n, dataSource, err)
	}
	return st, nil
}

// publish changes the source's file and waits for the version it makes.
func (d *nodeData) publish(ctx context.Context, step *stepper, content string) error {
	step.say("The demo changes the source: %s = %s; the repository checks it every second", sourceFile, content)
	d.watch.restart()
	if err := d.source.set(content); err != nil {
		return err
	}
	st, err := d.waitVersions(ctx, len(d.names)+1)
	if err != nil {
		return err
	}
	newest := st.Latest()
	d.names[newest.ID] = content
	step.done("GET %s/v1/sources/%s: %d versions:", d.repo.BaseURL, dataSource, len(st.Versions))
	printVersions(step, st, d.names)
	return nil
}

// showFiles prints, per web pod, the file its app reads, fetched from the
// app itself, and checks it is want.
func (d *nodeData) showFiles(ctx context.Context, step *stepper, want string) error {
	pods, err := webPods(ctx, d.n.client)
	if err != nil {
		return err
	}
	for _, p := range pods {
		url := fileURL(p.Status.PodIP)
		got, err := d.host.get(ctx, url)
		if err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		step.done("pod %s: GET %s (the app's view of %s/%s/%s): %q", p.Name, url, webDataDir, dataSource, sourceFile, got)
		if strings.TrimSpace(got) != want {
			return fmt.Errorf("pod %s's app reads %q, want %q", p.Name, got, want)
		}
	}
	return nil
}

// show tells the rest of the data story once v1 is live: v2 rolls out in
// waves, v3 is judged bad by an app's watchdog and rolled back.
func (d *nodeData) show(ctx context.Context, step *stepper) error {
	if err := d.publish(ctx, step, "v2"); err != nil {
		return err
	}
	step.say("AutoCrane's manager asks the repository for new versions every 30s (--data-poll-interval), then rolls v2 out "+
		"wave by wave (waves 1, 10%%, 50%%, 100%% of 2 pods; each bakes %ds). As it happens:", webBakeSeconds)
	if err := d.watch.until(ctx, step, "v2 promoted", d.watch.settled("v2")); err != nil {
		return err
	}
	if err := d.showFiles(ctx, step, "v2"); err != nil {
		return err
	}

	if err := d.publish(ctx, step, "v3"); err != nil {
		return err
	}
	step.say("v3 is a bad version: the app of the first pod that reads it fails its watchdog. As it happens:")
	var victim *corev1.Pod
	if err := d.watch.until(ctx, step, "a pod's app reading v3", func(pods []corev1.Pod) error {
		for i := range pods {
			if pods[i].Status.PodIP == "" {
				continue
			}
			if got, err := d.host.get(ctx, fileURL(pods[i].Status.PodIP)); err == nil && strings.TrimSpace(got) == "v3" {
				victim = &pods[i]
				return nil
			}
		}
		return errors.New("no pod's app reads v3 yet")
	}); err != nil {
		return err
	}
	url, err := d.host.post(ctx, victim, samplePort, "/fail")
	if err != nil {
		return err
	}
	d.watch.at(step, "pod %s's app reads v3 (GET %s) and judges it bad: its watchdog fails (the demo sent POST %s)",
		victim.Name, fileURL(victim.Status.PodIP), url)
	if err := d.watch.until(ctx, step, "v3 rolled back to v2 on every pod", d.watch.rolledBack("v3", "v2")); err != nil {
		return err
	}
	step.say("v3 was rolled back: every pod holds v2 again, and the line's state marks v3 bad")
	if err := d.showFiles(ctx, step, "v2"); err != nil {
		return err
	}
	if err := d.showState(ctx, step); err != nil {
		return err
	}
	step.say("The app recovers (POST /recover); v3 stays bad and is never rolled out again")
	url, err = d.host.post(ctx, victim, samplePort, "/recover")
	if err != nil {
		return err
	}
	step.done("POST %s: 200 OK", url)
	return nil
}

// follow prints what happens on the data line after the story, until ctx
// ends: a version someone publishes at the source rolls out. A new version
// is named by the source's content when the demo first sees it.
func (d *nodeData) follow(ctx context.Context, step *stepper) {
	d.watch.wallClock = true
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		err := d.learnVersions(ctx, step)
		if err == nil {
			_, err = d.watch.observe(ctx, step)
		}
		if err != nil && err.Error() != last && ctx.Err() == nil {
			step.done("(the demo could not follow the data line: %v)", err)
		}
		last = ""
		if err != nil {
			last = err.Error()
		}
	}
}

// learnVersions names the versions the story did not make.
func (d *nodeData) learnVersions(ctx context.Context, step *stepper) error {
	st, err := d.repo.Source(ctx, dataSource)
	if err != nil {
		return err
	}
	for _, v := range st.Versions {
		if _, ok := d.names[v.ID]; ok {
			continue
		}
		content, err := os.ReadFile(d.source.path())
		if err != nil {
			return err
		}
		d.names[v.ID] = strings.TrimSpace(string(content))
		d.watch.at(step, "the repository made version %s (%s = %s)", v.ID, sourceFile, d.names[v.ID])
	}
	return nil
}

// showState prints the data line's state ConfigMap, and checks that it
// marks v3 bad.
func (d *nodeData) showState(ctx context.Context, step *stepper) error {
	line := webLine()
	cm, err := stateConfigMap(ctx, d.n.client, line)
	if err != nil {
		return err
	}
	if cm == nil {
		return fmt.Errorf("no state ConfigMap %s/%s", ownNamespace, line.Name())
	}
	st, err := datarollout.ParseState(cm.Data[datarollout.KeyState], line)
	if err != nil {
		return err
	}
	lkg := "none"
	if st.LKG != nil {
		lkg = d.names.name(st.LKG.ID)
	}
	step.done("ConfigMap %s/%s: last known good %s; bad versions:", ownNamespace, cm.Name, lkg)
	bad := false
	for _, b := range st.Bad {
		step.done("  %s (%s): %s", b.Version.ID, d.names.name(b.Version.ID), d.names.named(b.Reason))
		bad = bad || d.names[b.Version.ID] == "v3"
	}
	if !bad {
		return errors.New("the line's state does not mark v3 bad")
	}
	return nil
}

// webLine is the data line of the web pods: its state ConfigMap outlives
// the pods, so the demo removes it with its namespaces.
func webLine() datarollout.Line {
	return datarollout.Line{Namespace: demoNamespace, StoreURL: fmt.Sprintf("http://datarepository.%s.svc:%d", demoNamespace, repositoryPort), Source: dataSource}
}

// webPods lists config/samples' web pods that are not being deleted.
func webPods(ctx context.Context, c client.Client) ([]corev1.Pod, error) {
	return livePods(ctx, c, demoNamespace, webApp)
}

// nodeDataWatch prints, as they happen, the changes to the web pods' data
// annotations, state and health, and the data rollout's Events.
type nodeDataWatch struct {
	data   *nodeData
	start  time.Time
	shown  map[string]webView
	events map[types.UID]bool
	// notes are the data rollout Events' notes seen, by reason, with
	// versions named.
	notes map[string][]string
	// wallClock prints times of day instead of times since start.
	wallClock bool
}

// webView is what the story prints of a web pod.
type webView struct {
	state, request, status, live, health string
}

func newNodeDataWatch(d *nodeData) *nodeDataWatch {
	return &nodeDataWatch{data: d, start: time.Now(), shown: map[string]webView{}, events: map[types.UID]bool{},
		notes: map[string][]string{}}
}

func (w *nodeDataWatch) restart() { w.start = time.Now() }

func (w *nodeDataWatch) at(step *stepper, format string, args ...any) {
	if w.wallClock {
		step.done("%s %s", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
		return
	}
	step.done("+%-5s %s", fmt.Sprintf("%.1fs", time.Since(w.start).Seconds()), fmt.Sprintf(format, args...))
}

func (w *nodeDataWatch) view(p *corev1.Pod) webView {
	v := webView{state: viewOf(p).state, health: p.Labels[spec.LabelHealth]}
	if r, err := spec.ParseDataRequest(p.Annotations[spec.PrefixDataRequest+dataSource]); err == nil {
		v.request = w.data.names.name(r.ID)
	}
	if raw := p.Annotations[spec.PrefixDataStatus+dataSource]; raw != "" {
		st, err := spec.ParseDataStatus(raw)
		if err != nil {
			v.status = fmt.Sprintf("%q (%v)", raw, err)
			return v
		}
		held := "nothing"
		if st.Version != "" {
			held = w.data.names.name(st.Version)
		}
		v.status = fmt.Sprintf("%s, holding %s", st.State, held)
		if st.State == spec.DataLive {
			v.live = held
		}
		if st.Message != "" {
			v.status += ": " + w.data.names.named(st.Message)
		}
	}
	return v
}

// until prints what changes until cond holds for the web pods.
func (w *nodeDataWatch) until(ctx context.Context, step *stepper, what string, cond func([]corev1.Pod) error) error {
	var last error
	err := poll(ctx, rolloutTimeout, func() (bool, error) {
		pods, err := w.observe(ctx, step)
		if err != nil {
			return false, err
		}
		last = cond(pods)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s: %w (%v)", what, err, last)
	}
	return nil
}

// allLive holds when every web pod runs, requests and holds name live.
func (w *nodeDataWatch) allLive(name string) func([]corev1.Pod) error {
	return func(pods []corev1.Pod) error {
		if len(pods) == 0 {
			return errors.New("no web pods")
		}
		for i := range pods {
			v := w.view(&pods[i])
			if pods[i].Status.Phase != corev1.PodRunning || v.request != name || v.live != name {
				return fmt.Errorf("pod %s: %s, requests %q, %s", pods[i].Name, v.state, v.request, v.status)
			}
		}
		return nil
	}
}

// settled holds when every web pod holds name live and the rollout
// promoted it to last known good.
func (w *nodeDataWatch) settled(name string) func([]corev1.Pod) error {
	return w.allLiveAnd(name, datarollout.ReasonPromoted, name)
}

// rolledBack holds when every web pod holds good live again after the
// rollout rolled bad back.
func (w *nodeDataWatch) rolledBack(bad, good string) func([]corev1.Pod) error {
	return w.allLiveAnd(good, datarollout.ReasonRolledBack, bad)
}

func (w *nodeDataWatch) allLiveAnd(live string, reason datarollout.Reason, about string) func([]corev1.Pod) error {
	all := w.allLive(live)
	return func(pods []corev1.Pod) error {
		if err := all(pods); err != nil {
			return err
		}
		for _, note := range w.notes[string(reason)] {
			if strings.Contains(note, "version "+about+" ") {
				return nil
			}
		}
		return fmt.Errorf("no %s Event about version %s yet", reason, about)
	}
}

func (w *nodeDataWatch) observe(ctx context.Context, step *stepper) ([]corev1.Pod, error) {
	pods, err := webPods(ctx, w.data.n.client)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		p := &pods[i]
		now, before := w.view(p), w.shown[p.Name]
		if now.state != before.state {
			w.at(step, "pod %s: %s", p.Name, now.state)
		}
		if now.request != before.request {
			w.at(step, "pod %s: %s%s asks for %s", p.Name, spec.PrefixDataRequest, dataSource, orNone(now.request))
		}
		if now.status != before.status {
			w.at(step, "pod %s: %s%s: %s", p.Name, spec.PrefixDataStatus, dataSource, orNone(now.status))
		}
		if now.health != before.health {
			w.at(step, "pod %s: label %s=%s", p.Name, spec.LabelHealth, orNone(now.health))
		}
		w.shown[p.Name] = now
	}
	var events eventsv1.EventList
	if err := w.data.n.client.List(ctx, &events, client.InNamespace(demoNamespace)); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	sort.SliceStable(events.Items, func(i, j int) bool {
		return events.Items[i].CreationTimestamp.Before(&events.Items[j].CreationTimestamp)
	})
	for _, e := range events.Items {
		if w.events[e.UID] || e.ReportingController != dataRolloutController {
			continue
		}
		w.events[e.UID] = true
		related := ""
		if e.Related != nil {
			related = fmt.Sprintf(" (pod %s)", e.Related.Name)
		}
		note := w.data.names.named(e.Note)
		w.notes[e.Reason] = append(w.notes[e.Reason], note)
		w.at(step, "Event %s on %s %s%s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, related, note)
	}
	return pods, nil
}
