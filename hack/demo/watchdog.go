package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/spec"
)

// Deadlines of the watchdog story's waits: generous, as a loaded machine is
// slow; the demo's tuning makes each step take seconds.
const (
	podsTimeout   = 60 * time.Second
	healthTimeout = 60 * time.Second
	storyTimeout  = 3 * time.Minute
)

// statusKey is the canary's watchdog status annotation.
const statusKey = spec.PrefixWatchdogStatus + watchdogName

// podColumns is the kubectl get pods -L status.autocrane.io/health view,
// with the phase, the IP and the watchdog's status annotation.
const podColumns = "NAME:.metadata.name,PHASE:.status.phase,IP:.status.podIP," +
	`HEALTH:.metadata.labels.status\.autocrane\.io/health,` +
	`STATUS.AUTOCRANE.IO/ALIVE:.metadata.annotations.status\.autocrane\.io/alive`

// cluster is what the stories need of the API server: a client and
// kubectl. On a bare control plane it is the envtest framework's Env; on a
// real cluster, the node's.
type cluster interface {
	apiClient() client.Client
	Kubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error)
}

// podHost runs the story's pods and reaches their apps: the demo's fake
// kubelet on a bare control plane, or the real kubelet of a node.
type podHost interface {
	// start runs (or waits for) the story's first pods, and says so.
	start(ctx context.Context, step *stepper, pods []corev1.Pod, port int) error
	// added is called once for each pod created during the story; it runs
	// the pod, if the host runs pods itself, and says what it did ("" for
	// nothing).
	added(ctx context.Context, p *corev1.Pod, port int) (string, error)
	// removed is called once for each pod that is gone, likewise.
	removed(name string) (string, error)
	// post sends POST path to the app of pod p, and returns the URL.
	post(ctx context.Context, p *corev1.Pod, port int, path string) (string, error)
}

// showWatchdog tells the watchdog story on the canary Deployment of
// hack/demo/overlay: its pods run and turn healthy, one fails, AutoCrane
// records the error, evicts the pod within the PodDisruptionBudget, and the
// ReplicaSet's replacement runs and turns healthy.
func showWatchdog(ctx context.Context, step *stepper, k cluster, host podHost, port int) error {
	step.say("The canary Deployment (namespace %s) declares a watchdog, %s%s: POD_IP:%d/watchdog",
		watchdogNamespace, spec.PrefixProbe, watchdogName, port)
	var pods []corev1.Pod
	if err := poll(ctx, podsTimeout, func() (bool, error) {
		var err error
		pods, err = canaryPods(ctx, k.apiClient())
		return err == nil && len(pods) >= 2, err
	}); err != nil {
		return fmt.Errorf("wait for the canary's pods: %w", err)
	}
	for _, p := range pods {
		step.done("pod %s created by ReplicaSet %s", p.Name, ownerName(p))
	}
	if err := host.start(ctx, step, pods, port); err != nil {
		return err
	}

	step.say("Waiting for AutoCrane's prober to record %s=%s on each pod", spec.LabelHealth, spec.LevelInfo)
	if err := poll(ctx, healthTimeout, func() (bool, error) {
		now, err := canaryPods(ctx, k.apiClient())
		if err != nil {
			return false, err
		}
		healthy := 0
		for _, p := range now {
			if p.Labels[spec.LabelHealth] == string(spec.LevelInfo) {
				healthy++
			}
		}
		return healthy == len(pods), nil
	}); err != nil {
		return fmt.Errorf("wait for health info: %w", err)
	}
	if err := printPods(ctx, step, k); err != nil {
		return err
	}

	victim := pods[0]
	step.say("Making pod %s fail: POST /fail to its testworkload, whose /watchdog then answers 500", victim.Name)
	url, err := host.post(ctx, &victim, port, "/fail")
	if err != nil {
		return err
	}
	step.done("POST %s: 200 OK", url)

	step.say("What AutoCrane does, as it happens (probe every 2s, error after 2 failures, evict 5s later, within the PodDisruptionBudget)")
	if err := watchRepair(ctx, step, k, host, port, victim.Name); err != nil {
		return err
	}

	step.say("The canary's pods now")
	return printPods(ctx, step, k)
}

// repair is what watchRepair has seen so far.
type repair struct {
	start       time.Time
	victim      string
	known       map[string]bool    // pods already printed
	shown       map[string]podView // as last printed
	events      map[types.UID]bool // Events already printed
	evicted     bool               // the Evicted Event on the victim
	gone        bool               // the victim no longer exists
	replacement string             // the ReplicaSet's new pod
	healthy     bool               // the replacement is info
}

// podView is what the story prints of a pod.
type podView struct {
	health, status string
	// state is the phase and readiness, "Running, Ready".
	state string
}

func viewOf(p *corev1.Pod) podView {
	state := string(p.Status.Phase)
	if state == "" {
		state = "Pending"
	}
	if controller.PodReady(p) {
		state += ", Ready"
	} else if p.Status.Phase == corev1.PodRunning {
		state += ", not Ready"
	}
	return podView{health: p.Labels[spec.LabelHealth], status: p.Annotations[statusKey], state: state}
}

// regarding reports whether an Event about kind/name is part of the story.
func (r *repair) regarding(kind, name string) bool {
	return (kind == "Pod" && r.known[name]) || (kind == "Deployment" && name == watchdogApp)
}

// watchRepair prints each change to the canary's pods and each Event about
// them or their Deployment, and runs the replacement pod, until the victim
// was evicted and its replacement is healthy.
func watchRepair(ctx context.Context, step *stepper, k cluster, host podHost, port int, victim string) error {
	r := &repair{
		start:  time.Now(),
		victim: victim,
		known:  map[string]bool{},
		shown:  map[string]podView{},
		events: map[types.UID]bool{},
	}
	// Only changes from now on.
	pods, err := canaryPods(ctx, k.apiClient())
	if err != nil {
		return err
	}
	for i := range pods {
		r.known[pods[i].Name] = true
		r.shown[pods[i].Name] = viewOf(&pods[i])
	}
	old, err := canaryEvents(ctx, k.apiClient())
	if err != nil {
		return err
	}
	for _, e := range old {
		r.events[e.UID] = true
	}
	err = poll(ctx, storyTimeout, func() (bool, error) {
		if err := r.observePods(ctx, step, k, host, port); err != nil {
			return false, err
		}
		if err := r.observeEvents(ctx, step, k); err != nil {
			return false, err
		}
		return r.evicted && r.gone && r.healthy, nil
	})
	if err != nil {
		return fmt.Errorf("watch the repair (evicted %t, gone %t, replacement %q, healthy %t): %w", r.evicted, r.gone, r.replacement, r.healthy, err)
	}
	return nil
}

func (r *repair) at(step *stepper, format string, args ...any) {
	step.done("+%-5s %s", fmt.Sprintf("%.1fs", time.Since(r.start).Seconds()), fmt.Sprintf(format, args...))
}

func (r *repair) observePods(ctx context.Context, step *stepper, k cluster, host podHost, port int) error {
	pods, err := canaryPods(ctx, k.apiClient())
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, p := range pods {
		present[p.Name] = true
	}
	if !r.gone && !present[r.victim] {
		r.gone = true
		said, err := host.removed(r.victim)
		if err != nil {
			return err
		}
		if said != "" {
			said = "; " + said
		}
		r.at(step, "pod %s is gone%s", r.victim, said)
	}
	for i := range pods {
		p := &pods[i]
		if !r.known[p.Name] {
			r.known[p.Name] = true
			r.at(step, "ReplicaSet %s created pod %s, replacing %s", ownerName(*p), p.Name, r.victim)
			if r.replacement == "" {
				r.replacement = p.Name
			}
			said, err := host.added(ctx, p, port)
			if err != nil {
				return err
			}
			if said != "" {
				r.at(step, "pod %s: %s", p.Name, said)
			}
		}
		now, before := viewOf(p), r.shown[p.Name]
		if now.state != before.state {
			r.at(step, "pod %s: %s", p.Name, now.state)
		}
		if now.status != before.status {
			r.at(step, "pod %s: %s: %s", p.Name, statusKey, describeStatus(now.status))
		}
		if now.health != before.health {
			r.at(step, "pod %s: label %s=%s", p.Name, spec.LabelHealth, orNone(now.health))
		}
		r.shown[p.Name] = now
		if p.Name == r.replacement && now.health == string(spec.LevelInfo) {
			r.healthy = true
		}
	}
	return nil
}

func (r *repair) observeEvents(ctx context.Context, step *stepper, k cluster) error {
	events, err := canaryEvents(ctx, k.apiClient())
	if err != nil {
		return err
	}
	for _, e := range events {
		// AutoCrane's Events only: on a real node the kubelet's would drown them.
		if r.events[e.UID] || !r.regarding(e.Regarding.Kind, e.Regarding.Name) || !strings.HasPrefix(e.ReportingController, "autocrane") {
			continue
		}
		r.events[e.UID] = true
		r.at(step, "events.k8s.io Event %s on %s %s, from %s: %s", e.Reason, e.Regarding.Kind, e.Regarding.Name, e.ReportingController, e.Note)
		if e.Reason == "Evicted" && e.Regarding.Kind == "Pod" && e.Regarding.Name == r.victim {
			r.evicted = true
		}
	}
	return nil
}

// describeStatus spells out a LEVEL/TIMESTAMP/MESSAGE status annotation.
func describeStatus(v string) string {
	if v == "" {
		return "(none)"
	}
	st, err := spec.ParseWatchdogStatus(v)
	if err != nil {
		return fmt.Sprintf("%q (%v)", v, err)
	}
	return fmt.Sprintf("%s (level %s since %s: %s)", v, st.Level, st.Time.Format(time.TimeOnly), st.Message)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// canaryPods lists the canary's pods that are not being deleted, by name.
func canaryPods(ctx context.Context, c client.Client) ([]corev1.Pod, error) {
	return livePods(ctx, c, watchdogNamespace, watchdogApp)
}

// livePods lists the pods labelled app=APP in ns that are not being
// deleted, by name.
func livePods(ctx context.Context, c client.Client, ns, app string) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		return nil, fmt.Errorf("list the pods of %s/%s: %w", ns, app, err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// canaryEvents lists the events.k8s.io Events in the canary's namespace,
// oldest first.
func canaryEvents(ctx context.Context, c client.Client) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(watchdogNamespace)); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	sort.SliceStable(list.Items, func(i, j int) bool {
		return list.Items[i].CreationTimestamp.Before(&list.Items[j].CreationTimestamp)
	})
	return list.Items, nil
}

// printPods prints the canary's pods with kubectl.
func printPods(ctx context.Context, step *stepper, k cluster) error {
	step.done("kubectl -n %s get pods -L %s, with the phase, IP and %s:", watchdogNamespace, spec.LabelHealth, statusKey)
	stdout, stderr, err := k.Kubectl(ctx, nil, "get", "pods", "-n", watchdogNamespace, "-o", "custom-columns="+podColumns)
	if err != nil {
		return fmt.Errorf("kubectl get pods: %w\n%s", err, stderr)
	}
	step.output(stdout)
	return nil
}

// follow goes on playing the kubelet for the canary until ctx ends: it runs
// each new pod and stops the process of each pod that is gone, printing
// both. It calls tick, if not nil, twice a second.
func (k *fakeKubelet) follow(ctx context.Context, step *stepper, port int, tick func()) {
	seen := map[string]bool{}
	for _, name := range k.pods() {
		seen[name] = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		if tick != nil {
			tick()
		}
		pods, err := canaryPods(ctx, k.client)
		if err != nil {
			if ctx.Err() == nil {
				step.done("(the demo could not list the canary's pods: %v)", err)
			}
			continue
		}
		present := map[string]bool{}
		for i := range pods {
			p := &pods[i]
			present[p.Name] = true
			if seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			c, err := k.run(ctx, p, port)
			if err != nil {
				if ctx.Err() == nil {
					step.done("(the demo could not run pod %s: %v)", p.Name, err)
				}
				continue
			}
			step.done("%s pod %s: testworkload at %s, reported Running and Ready", time.Now().Format(time.TimeOnly), p.Name, c.url)
		}
		for _, name := range k.pods() {
			if !present[name] {
				step.done("%s pod %s is gone; its process is stopped", time.Now().Format(time.TimeOnly), name)
				if err := k.stop(name); err != nil {
					step.done("(%v)", err)
				}
			}
		}
	}
}
