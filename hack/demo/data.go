package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/sidecars/datarepository"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// The data story's world: a Deployment whose pods read the data of one
// git repository, through the data repository and a datadeployer per pod.
const (
	// ownNamespace is AutoCrane's own namespace, where the manager keeps
	// the data rollouts' state.
	ownNamespace  = "autocrane-system"
	dataNamespace = "autocrane-data-demo"
	dataApp       = "reader"
	dataReplicas  = 4
	// dataSource is both the repository's source and the pods' data
	// deployment name: the data appears at LOCATION/models.
	dataSource      = "models"
	dataBakeSeconds = 3
	// rolloutTimeout bounds one rollout of the 4 pods: 3 waves, each
	// waiting for a /status read (every 5 s) and its bake.
	rolloutTimeout = 3 * time.Minute
)

// dataWorld is what the data story started; stop ends it. The pods'
// processes belong to the kubelet.
type dataWorld struct {
	origin   *gitOrigin
	repo     *dataRepository
	downward *downwardAPI
	timeline *timeline
	// names are the versions' names in the story.
	names        versionNames
	deployerPort int
	appPort      int
	watch        *dataWatch
	// followErr is the last error follow printed.
	followErr string
}

// stop ends whatever the story started, and removes its directories.
func (w *dataWorld) stop() error {
	var errs []error
	if w.timeline != nil {
		w.timeline.stop()
	}
	if w.repo != nil {
		errs = append(errs, w.repo.stop())
	}
	if w.origin != nil {
		errs = append(errs, w.origin.remove())
	}
	return errors.Join(errs...)
}

// line is the story's data line: its namespace, repository and source.
func (w *dataWorld) line() datarollout.Line {
	return datarollout.Line{Namespace: dataNamespace, StoreURL: w.repo.url, Source: dataSource}
}

// show tells the data story: a git source, a version that goes out in
// waves, a new commit that rolls out wave by wave, a bad commit that is
// rolled back; each step printed as it happens.
func (w *dataWorld) show(ctx context.Context, step *stepper, env *framework.Env, kubelet *fakeKubelet) error {
	if err := w.startSource(ctx, step, kubelet); err != nil {
		return err
	}
	// Watching before the pods exist: each of their changes is seen.
	var err error
	w.downward = newDownwardAPI()
	if w.timeline, err = startTimeline(ctx, env.Config, w.downward); err != nil {
		return err
	}
	watch := newDataWatch(w, env, kubelet)
	w.watch = watch
	pods, err := w.createReaders(ctx, step, env, watch)
	if err != nil {
		return err
	}
	if err := w.runReaders(ctx, step, kubelet, pods); err != nil {
		return err
	}

	step.say("v1 goes out. There is no last known good version yet, so the webhook gave the pods no request, and the first version "+
		"goes out in waves too (default waves 1,10%%,50%%,100%%: 1, 2, then 4 of 4 pods), each baking %ds. "+
		"What happened, in order, since kubectl apply (versions named by their content):", dataBakeSeconds)
	if err := watch.until(ctx, step, "v1 to become the last known good version on every pod", watch.settledOn("v1")); err != nil {
		return err
	}
	step.say("v1 is live everywhere: each pod's request and status annotations, and the file its app reads")
	if err := watch.showPods(step, true); err != nil {
		return err
	}

	if err := w.publish(ctx, step, watch, "v2"); err != nil {
		return err
	}
	step.say("AutoCrane rolls v2 out wave by wave; as it happens, since the commit:")
	if err := watch.until(ctx, step, "v2 to become the last known good version on every pod", watch.settledOn("v2")); err != nil {
		return err
	}
	if err := watch.showPods(step, false); err != nil {
		return err
	}
	return w.showBadVersion(ctx, step, watch, kubelet)
}

// follow prints what happens on the data line after the story, until the
// demo ends: a version someone commits rolls out. It names new versions
// by their commit.
func (w *dataWorld) follow(ctx context.Context, step *stepper) {
	w.watch.wallClock = true
	err := w.learnVersions(ctx)
	if err == nil {
		err = w.watch.observe(step)
	}
	if err != nil && err.Error() != w.followErr && ctx.Err() == nil {
		step.done("(the demo could not follow the data line: %v)", err)
	}
	w.followErr = ""
	if err != nil {
		w.followErr = err.Error()
	}
}

// learnVersions names the versions the story did not make.
func (w *dataWorld) learnVersions(ctx context.Context) error {
	st, err := w.repo.client.Source(ctx, dataSource)
	if err != nil {
		return err
	}
	for _, v := range st.Versions {
		if _, ok := w.names[v.ID]; !ok {
			w.names[v.ID] = fmt.Sprintf("the version of commit %.7s", v.Revision)
		}
	}
	return nil
}

// startSource commits v1 to a new git repository and starts the data
// repository following it.
func (w *dataWorld) startSource(ctx context.Context, step *stepper, kubelet *fakeKubelet) error {
	step.say("The data story. A data source: a git repository (git CLI, in a temporary directory) with one commit, "+
		"%s = v1, and the data repository (cmd/datarepository) following it", versionFile)
	var err error
	if w.origin, err = newGitOrigin(ctx); err != nil {
		return err
	}
	commit, err := w.origin.commit(ctx, "v1")
	if err != nil {
		return err
	}
	step.done("git commit %s in %s: %s = \"v1\"", commit, w.origin.dir, versionFile)
	if w.repo, err = startRepository(ctx, kubelet.binary("datarepository"), dataSource, w.origin); err != nil {
		return err
	}
	step.done("datarepository %s", strings.Join(w.repo.args, " "))
	st, err := w.repo.waitVersions(ctx, dataSource, 1)
	if err != nil {
		return err
	}
	w.names = versionNames{st.Versions[0].ID: "v1"}
	step.done("GET %s/v1/sources/%s: a %s source (%s), %d version:", w.repo.url, dataSource, st.Kind, st.Location, len(st.Versions))
	printVersions(step, st, w.names)
	return nil
}

// versionNames maps a version id to its content ("v1"), the name the
// stories give it.
type versionNames map[string]string

// name is the story's name of version id, or the id.
func (v versionNames) name(id string) string {
	if n, ok := v[id]; ok {
		return n
	}
	return id
}

// named replaces the version ids in text by their names.
func (v versionNames) named(text string) string {
	for id, n := range v {
		text = strings.ReplaceAll(text, id, n)
	}
	return text
}

// printVersions prints a source's versions, newest last.
func printVersions(step *stepper, st datarepository.SourceStatus, names versionNames) {
	var lines []string
	for _, v := range st.Versions {
		// A git source's revision is the commit; an http source's, its
		// Last-Modified or ETag.
		revision := fmt.Sprintf("commit %.7s", v.Revision)
		if st.Kind != "git" {
			revision = fmt.Sprintf("revision %q", v.Revision)
		}
		lines = append(lines, fmt.Sprintf("%s  %s  %d bytes  %s  (%s)", v.ID, v.Digest, v.Size, revision, orNone(names[v.ID])))
	}
	step.output(strings.Join(lines, "\n"))
}

// publish commits content at the source and waits until the repository
// made it a version.
func (w *dataWorld) publish(ctx context.Context, step *stepper, watch *dataWatch, content string) error {
	step.say("git commit: %s = %s; the data repository checks its source every second", versionFile, content)
	watch.restart()
	commit, err := w.origin.commit(ctx, content)
	if err != nil {
		return err
	}
	step.done("git commit %s: %s = %q", commit, versionFile, content)
	st, err := w.repo.waitVersions(ctx, dataSource, len(w.names)+1)
	if err != nil {
		return err
	}
	newest := st.Latest()
	w.names[newest.ID] = content
	step.done("GET %s/v1/sources/%s: %d versions, the newest from commit %.7s:", w.repo.url, dataSource, len(st.Versions), newest.Revision)
	printVersions(step, st, w.names)
	return nil
}

// readerManifest is the story's namespace and Deployment. Its namespace is
// not opted in: the data annotation alone brings the pods to AutoCrane.
func (w *dataWorld) readerManifest() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
      annotations:
        %[4]s: %[5]s
        %[6]s: %[7]s
        %[8]s: POD_IP:%[9]d/watchdog
        %[10]s: "%[11]d"
        # Quick watchdogs for the demo; the rollback, not an eviction, is the story.
        %[12]s: "1"
        %[13]s: "2"
        %[14]s: "1"
        %[15]s: "false"
    spec:
      containers:
      - name: app
        image: autocrane:dev
        command: ["/usr/local/bin/testworkload"]
        ports:
        - {name: http, containerPort: %[9]d}
`, dataNamespace, dataApp, dataReplicas,
		spec.PrefixData+dataSource, dataSource,
		spec.KeyStoreURL, w.repo.url,
		spec.PrefixProbe+watchdogName, w.appPort,
		spec.KeyRolloutBakeSeconds, dataBakeSeconds,
		spec.KeyWatchdogPeriodSeconds, spec.KeyWatchdogUnhealthyThreshold, spec.KeyWatchdogHealthyThreshold,
		spec.KeyWatchdogEvict)
}

// createReaders applies the reader Deployment and waits for its pods.
func (w *dataWorld) createReaders(ctx context.Context, step *stepper, env *framework.Env, watch *dataWatch) ([]corev1.Pod, error) {
	manifest := w.readerManifest()
	step.say("kubectl apply: Deployment %s/%s, %d pods whose app reads data deployment %s (source %s of the repository), "+
		"judged by the app's watchdog:", dataNamespace, dataApp, dataReplicas, dataSource, dataSource)
	_, tmpl, _ := strings.Cut(manifest, "    metadata:\n")
	tmpl, _, _ = strings.Cut(tmpl, "    spec:\n")
	step.output(strings.TrimRight(tmpl, "\n"))
	watch.restart()
	stdout, stderr, err := env.Kubectl(ctx, strings.NewReader(manifest), "apply", "-f", "-")
	if err != nil {
		return nil, fmt.Errorf("kubectl apply the reader Deployment: %w\n%s", err, stderr)
	}
	step.output(stdout)

	var pods corev1.PodList
	if err := poll(ctx, podsTimeout, func() (bool, error) {
		if err := env.Client.List(ctx, &pods, client.InNamespace(dataNamespace), client.MatchingLabels{"app": dataApp}); err != nil {
			return false, err
		}
		return len(pods.Items) >= dataReplicas, nil
	}); err != nil {
		return nil, fmt.Errorf("wait for the reader's pods: %w", err)
	}
	for _, p := range pods.Items {
		step.done("pod %s: injected with %s, and its watchdog %s: %s", p.Name, injector.ContainerDataDeployer,
			injector.DataDeployerWatchdogKey, p.Annotations[injector.DataDeployerWatchdogKey])
	}
	return pods.Items, nil
}

// runReaders plays the kubelet for the reader's pods, and waits until
// both of each pod's watchdogs are healthy.
func (w *dataWorld) runReaders(ctx context.Context, step *stepper, kubelet *fakeKubelet, pods []corev1.Pod) error {
	step.say("Playing the kubelet for %s's pods: per pod, the app (testworkload) and the injected datadeployer on the pod's "+
		"loopback IP, a data volume, and the downward API annotations file, rewritten as the kubelet would whenever the pod's "+
		"annotations change", dataApp)
	data := &dataSidecar{repositoryURL: w.repo.url, port: w.deployerPort, deployments: dataSource, downward: w.downward}
	for i := range pods {
		c, err := kubelet.runData(ctx, &pods[i], w.appPort, data)
		if err != nil {
			return err
		}
		if i == 0 {
			step.done("each datadeployer runs as: datadeployer %s",
				strings.Join(deployerArgs(data, "POD_DIR/data", "POD_DIR/podinfo", net.JoinHostPort("POD_IP", strconv.Itoa(w.deployerPort))), " "))
		}
		step.done("pod %s: app at %s, datadeployer at %s, reported Running", pods[i].Name, c.url, c.deployerURL)
	}
	dataWatchdog := spec.PrefixWatchdogStatus + strings.TrimPrefix(injector.DataDeployerWatchdogKey, spec.PrefixProbe)
	step.done("waiting for AutoCrane's prober to find both watchdogs of each pod healthy: the app's (%s) and the datadeployer's (%s)",
		spec.PrefixProbe+watchdogName, injector.DataDeployerWatchdogKey)
	if err := poll(ctx, healthTimeout, func() (bool, error) {
		if err := w.downward.check(); err != nil {
			return false, err
		}
		now, err := w.timeline.readers()
		if err != nil {
			return false, err
		}
		healthy := 0
		for _, p := range now {
			if p.Labels[spec.LabelHealth] == string(spec.LevelInfo) &&
				strings.HasPrefix(p.Annotations[dataWatchdog], string(spec.LevelInfo)+"/") {
				healthy++
			}
		}
		return healthy == len(pods), nil
	}); err != nil {
		return fmt.Errorf("wait for the reader's pods to be healthy: %w", err)
	}
	step.done("every pod: %s=%s", spec.LabelHealth, spec.LevelInfo)
	return nil
}

// showBadVersion publishes v3, makes the app of the first pod that reads
// it fail, and shows the rollback; then the app recovers.
func (w *dataWorld) showBadVersion(ctx context.Context, step *stepper, watch *dataWatch, kubelet *fakeKubelet) error {
	if err := w.publish(ctx, step, watch, "v3"); err != nil {
		return err
	}
	step.say("v3 is a bad version: the app's watchdog fails on v3. AutoCrane starts rolling it out; as it happens, since the commit:")
	var victim string
	if err := watch.until(ctx, step, "a pod's app to read v3", func() error {
		if victim = watch.fileReadBy("v3"); victim == "" {
			return errors.New("no pod's app reads v3 yet")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := kubelet.post(ctx, victim, "/fail"); err != nil {
		return err
	}
	watch.at(step, time.Now(), "pod %s's app read v3 and judges it bad: the app's watchdog fails on v3 (the demo sent POST %s/fail)", victim, kubelet.url(victim))
	if err := watch.until(ctx, step, "v3 to be rolled back to v2 on every pod", watch.rolledBack("v3", "v2")); err != nil {
		return err
	}
	step.say("v3 was rolled back: every pod requests v2 again, holds it live and its app reads it; the line's state marks v3 bad")
	if err := watch.showPods(step, false); err != nil {
		return err
	}
	if err := watch.showState(ctx, step); err != nil {
		return err
	}

	step.say("The app's watchdog recovers (POST %s/recover); v3 stays bad, and is never rolled out again", kubelet.url(victim))
	watch.restart()
	if err := kubelet.post(ctx, victim, "/recover"); err != nil {
		return err
	}
	return watch.until(ctx, step, "pod "+victim+" to be healthy", func() error {
		if h := watch.shown[victim].health; h != string(spec.LevelInfo) {
			return fmt.Errorf("its health is %q", h)
		}
		return nil
	})
}

// stateConfigMap reads the line's state ConfigMap; nil when there is none
// yet.
func stateConfigMap(ctx context.Context, c client.Client, line datarollout.Line) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ownNamespace, Name: line.Name()}, cm)
	if err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil, nil
		}
		return nil, fmt.Errorf("read the state ConfigMap %s/%s: %w", ownNamespace, line.Name(), err)
	}
	return cm, nil
}
