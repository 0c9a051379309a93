package envtest

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// dataBake is the pods' rollout.data.autocrane.io/bake-seconds.
const dataBake = 3 * time.Second

// rolloutTimeout bounds one whole rollout of 4 pods: 3 waves, each waiting
// for a /status read (every 5 s) and a bake.
const rolloutTimeout = 3 * time.Minute

// versionFiles is the content of version name at the source.
func versionFiles(name string) map[string]string {
	return map[string]string{"version.txt": name, "weights/layer.bin": "weights of " + name}
}

// dataRollout is the world of TestDataRollout: a git source, the data
// repository, and a Deployment of 4 pods with data, played by the test.
type dataRollout struct {
	origin  *gitSource
	repo    *dataRepository
	ns      string
	line    datarollout.Line
	kubelet *fakeKubelet
	pods    map[string]*dataPod
	// versions are the source's versions, oldest first; names maps their
	// ids to the commit's name ("v1"...).
	versions []datarollout.Version
	names    map[string]string
}

// publish commits version name at the source and waits until the
// repository made it a version.
func (w *dataRollout) publish(ctx context.Context, t *testing.T, name string) datarollout.Version {
	t.Helper()
	w.origin.commit(t, versionFiles(name))
	v := w.repo.waitVersions(ctx, t, "models", len(w.versions)+1)
	w.versions = append(w.versions, v)
	w.names[v.ID] = name
	return v
}

// TestDataRollout runs data deployments end to end: a real data repository
// following a git repository, a real datadeployer per pod, AutoCrane's
// manager with its webhooks, prober and rollout controller, against a real
// API server. The test plays the kubelet (see runDataPod and fakeKubelet).
// Its steps build on each other: each version needs the one before as its
// last known good version.
func TestDataRollout(t *testing.T) {
	ctx := t.Context()
	bin := buildDataPrograms(t)
	w := &dataRollout{origin: newGitSource(t), names: map[string]string{}}
	w.origin.commit(t, versionFiles("v1"))
	w.repo = startDataRepository(ctx, t, filepath.Join(bin, "datarepository"), "models", w.origin)
	v1 := w.repo.waitVersions(ctx, t, "models", 1)
	w.versions, w.names[v1.ID] = []datarollout.Version{v1}, "v1"

	// Registered before the namespace, so it runs after its deletion.
	t.Cleanup(func() { w.deleteState(context.WithoutCancel(ctx), t) })
	// No inject label: the data annotations alone send the pods through
	// the webhook. The store URL is a namespace default.
	w.ns = suite.env.CreateNamespace(ctx, t, nil, map[string]string{spec.KeyStoreURL: w.repo.url})
	w.line = datarollout.Line{Namespace: w.ns, StoreURL: w.repo.url, Source: "models"}
	w.kubelet = startKubelet(ctx, t, w.ns)
	appPort := freePort(t)
	ann := fastWatchdog(spec.KeyWatchdogEvict, "false",
		spec.PrefixData+"models", "models",
		spec.KeyRolloutBakeSeconds, fmt.Sprint(int(dataBake.Seconds())))
	if err := suite.env.Client.Create(ctx, watchedDeployment(w.ns, "web", 4, appPort, ann)); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	created := waitPods(ctx, t, w.ns, "web", 4)
	checkDataInjection(t, created)
	w.pods = map[string]*dataPod{}
	for i := range created {
		w.pods[created[i].Name] = runDataPod(ctx, t, w.kubelet, &created[i], appPort, filepath.Join(bin, "datadeployer"), w.repo.url)
	}
	// Both watchdogs, the app's and the datadeployer's (injected), are
	// probed on the pod's IP.
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		for name, p := range w.kubelet.pods() {
			for _, key := range []string{"alive", "autocrane-data"} {
				if st := p.Annotations[spec.PrefixWatchdogStatus+key]; !strings.HasPrefix(st, "info/") {
					return false, fmt.Errorf("pod %s: watchdog %s is %q, want info", name, key, st)
				}
			}
		}
		return true, nil
	})

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"first version goes out in waves and becomes the last known good", func(t *testing.T) {
			// No last known good version yet: the pods start with no request,
			// and the first version reaches them in waves too (docs/data.md).
			w.rolloutPasses(ctx, t, 0, v1, nil, nil)
		}},
		{"new version rolls out wave by wave", func(t *testing.T) {
			from := w.kubelet.mark()
			v2 := w.publish(ctx, t, "v2")
			w.rolloutPasses(ctx, t, from, v2, &v1, nil)
		}},
		{"an error during the bake rolls back and marks the version bad", func(t *testing.T) {
			w.errorRollsBack(ctx, t)
		}},
		{"a repository outage leaves the pods serving their data", func(t *testing.T) {
			w.outageChangesNothing(ctx, t)
		}},
		{"a manager restart mid-rollout resumes from the state", func(t *testing.T) {
			w.restartResumes(ctx, t)
		}},
		{"a new pod starts on the last known good version at admission", func(t *testing.T) {
			w.newPodStartsOnLKG(ctx, t)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			return
		}
	}
}

// describeState says what a line's state holds, for failure messages.
func describeState(st datarollout.State) string {
	switch {
	case st.Rollout != nil:
		return "rolling " + st.Rollout.ID
	case st.LKG != nil:
		return "LKG " + st.LKG.ID
	}
	return "nothing"
}

// waitSettled waits until the line's last known good version is v with no
// rollout, and every pod requests v and reports it live; check, if not nil,
// sees every state read on the way.
func (w *dataRollout) waitSettled(ctx context.Context, t *testing.T, v datarollout.Version, check func(datarollout.State)) datarollout.State {
	t.Helper()
	var st datarollout.State
	framework.Eventually(ctx, t, rolloutTimeout, func() (bool, error) {
		w.kubelet.check(t)
		s, ok := lineState(ctx, t, w.line)
		if !ok {
			return false, fmt.Errorf("no state ConfigMap %s yet", w.line.Name())
		}
		if check != nil {
			check(s)
		}
		st = s
		if st.Rollout != nil || st.LKG == nil || st.LKG.Version != v {
			return false, fmt.Errorf("state: %s, want LKG %s", describeState(st), v.ID)
		}
		for name, p := range w.kubelet.pods() {
			req, status := p.Annotations[spec.PrefixDataRequest+"models"], p.Annotations[spec.PrefixDataStatus+"models"]
			if _, live := liveOn(status, v); !requests(req, v) || !live {
				return false, fmt.Errorf("pod %s: request %q, status %q; want %s live", name, req, status, v.ID)
			}
		}
		return true, nil
	})
	return st
}

// rolloutPasses waits until v (the version after lkg, nil for the first)
// is the last known good version, then checks how it got there: the pods'
// requests since history position from moved in waves of 1, 2 and 4 pods
// (4 pods and the default waves 1,10%,50%,100%: 10% is 1 pod, already
// reached, so it passes with the wave before), each wave beginning only
// once the wave before was live and had baked (see observeWaves); no pod
// left v; the data is on disk; the Events tell the same story. check, if
// not nil, sees every state read while waiting.
func (w *dataRollout) rolloutPasses(ctx context.Context, t *testing.T, from int, v datarollout.Version, lkg *datarollout.Version, check func(datarollout.State)) datarollout.State {
	t.Helper()
	st := w.waitSettled(ctx, t, v, check)
	if len(st.Bad) != 0 {
		t.Errorf("bad versions %+v, want none", st.Bad)
	}
	waves, movedOff := observeWaves(w.kubelet.history()[from:], v, dataBake)
	sizes := make([]int, len(waves))
	for i, wave := range waves {
		sizes[i] = wave.size
	}
	if want := []int{1, 2, 4}; !slices.Equal(sizes, want) {
		t.Errorf("waves of %s reached %v pods, want %v; the pods' requests and statuses:%s", v.ID, sizes, want, formatHistory(w.kubelet.history()[from:]))
	}
	if len(movedOff) > 0 {
		t.Errorf("pods %v stopped requesting %s during its rollout", movedOff, v.ID)
	}
	for name, p := range w.pods {
		w.checkFiles(t, p, name, v)
	}
	w.checkWaveEvents(ctx, t, v)
	if lkg != nil && (st.Previous == nil || st.Previous.Version != *lkg) {
		t.Errorf("previous version %+v, want %s", st.Previous, lkg.ID)
	}
	return st
}

// checkFiles checks that pod p's app sees version name of v under
// LOCATION/models.
func (w *dataRollout) checkFiles(t *testing.T, p *dataPod, name string, v datarollout.Version) {
	t.Helper()
	for file, content := range versionFiles(w.names[v.ID]) {
		if got, err := p.file("models", file); err != nil || got != content {
			t.Errorf("pod %s: models/%s = %q (%v), want %q (version %s)", name, file, got, err, content, v.ID)
		}
	}
}

// lkg is the line's last known good version, from its state.
func (w *dataRollout) lkg(ctx context.Context, t *testing.T) datarollout.Version {
	t.Helper()
	st, ok := lineState(ctx, t, w.line)
	if !ok || st.LKG == nil {
		t.Fatalf("the line has no last known good version: %+v", st)
	}
	return st.LKG.Version
}

// requesting lists the pods whose request asks for v now.
func (w *dataRollout) requesting(v datarollout.Version) []string {
	var out []string
	for name, p := range w.kubelet.pods() {
		if requests(p.Annotations[spec.PrefixDataRequest+"models"], v) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// errorRollsBack publishes a version and fails the app watchdog of the
// first pod that holds it live, during its wave's bake: every pod on it
// goes back to the last known good version, which the datadeployer still
// has on disk, and the version is marked bad and never tried again.
func (w *dataRollout) errorRollsBack(ctx context.Context, t *testing.T) {
	lkg := w.lkg(ctx, t)
	from := w.kubelet.mark()
	v := w.publish(ctx, t, "v3")
	var victim string
	framework.Eventually(ctx, t, rolloutTimeout, func() (bool, error) {
		w.kubelet.check(t)
		for name, p := range w.kubelet.pods() {
			if _, live := liveOn(p.Annotations[spec.PrefixDataStatus+"models"], v); live {
				victim = name
				return true, nil
			}
		}
		return false, fmt.Errorf("no pod holds %s live yet", v.ID)
	})
	w.pods[victim].app.post(t, "/fail")

	st := w.waitSettled(ctx, t, lkg, nil)
	i := slices.IndexFunc(st.Bad, func(b datarollout.BadVersion) bool { return b.Version == v })
	if i < 0 {
		t.Fatalf("version %s is not bad in the state: %+v", v.ID, st.Bad)
	}
	if !strings.Contains(st.Bad[i].Reason, victim) {
		t.Errorf("bad version reason %q does not name pod %s", st.Bad[i].Reason, victim)
	}
	waves, movedOff := observeWaves(w.kubelet.history()[from:], v, dataBake)
	if len(waves) == 0 || waves[0].size != 1 {
		t.Errorf("waves of %s: %+v, want a first wave of 1 pod", v.ID, waves)
	}
	asked := map[string]bool{}
	for _, c := range w.kubelet.history()[from:] {
		if requests(c.request, v) {
			asked[c.pod] = true
		}
	}
	for _, p := range movedOff {
		delete(asked, p)
	}
	if len(asked) > 0 {
		t.Errorf("pods %v asked for %s were not moved back", asked, v.ID)
	}
	// The datadeployer went back without a download: the last known good
	// version was still on disk.
	local := metricSum(t, w.pods[victim].deployerURL()+"/metrics", "autocrane_datadeployer_syncs_total",
		map[string]string{"deployment": "models", "result": "local"})
	if local < 1 {
		t.Errorf("pod %s: %v local syncs, want the rollback to be one", victim, local)
	}
	for name, p := range w.pods {
		w.checkFiles(t, p, name, lkg)
	}
	// The Warning Events name the version, and the pod to blame.
	framework.Eventually(ctx, t, 30*time.Second, func() (bool, error) {
		failed, back := w.versionEvents(ctx, t, "DataWaveFailed", v), w.versionEvents(ctx, t, "DataRolledBack", v)
		return satisfied(len(failed) == 1 && len(back) == 1,
			fmt.Errorf("%d DataWaveFailed and %d DataRolledBack Events for %s, want 1 and 1", len(failed), len(back), v.ID))
	})
	for _, reason := range []string{"DataWaveFailed", "DataRolledBack"} {
		e := w.versionEvents(ctx, t, reason, v)[0]
		if e.Type != corev1.EventTypeWarning || e.Related == nil || e.Related.Name != victim {
			t.Errorf("%s Event: type %s, related %+v; want Warning about pod %s", reason, e.Type, e.Related, victim)
		}
	}

	// Once the pod recovers, the controller goes on asking the repository,
	// whose newest version is the bad one: it must not roll it out again.
	w.pods[victim].app.post(t, "/recover")
	waitHealth(ctx, t, w.ns, victim, string(spec.LevelInfo))
	mark := w.kubelet.mark()
	okPolls := map[string]string{"op": "source", "result": "ok"}
	polls := registrySum(t, "autocrane_data_repository_requests_total", okPolls)
	// Watch five more looks at the repository.
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		n := registrySum(t, "autocrane_data_repository_requests_total", okPolls) - polls
		return satisfied(n >= 5, fmt.Errorf("the controller asked the repository %v times since the rollback, want 5", n))
	})
	for _, c := range w.kubelet.history()[mark:] {
		if requests(c.request, v) {
			t.Errorf("pod %s was asked for bad version %s again", c.pod, v.ID)
		}
	}
	if st, _ := lineState(ctx, t, w.line); st.Rollout != nil || !st.IsBad(v.ID) {
		t.Errorf("after the window: state %s, bad %+v; want no rollout and %s bad", describeState(st), st.Bad, v.ID)
	}
}

// outageChangesNothing kills the data repository: the controller cannot
// reach it, yet every pod keeps its data live, even a datadeployer that
// restarts during the outage; nothing is rolled back.
func (w *dataRollout) outageChangesNothing(ctx context.Context, t *testing.T) {
	before, _ := lineState(ctx, t, w.line)
	lkg := w.lkg(ctx, t)
	mark := w.kubelet.mark()
	failedPolls := map[string]string{"op": "source", "result": "error"}
	failed := registrySum(t, "autocrane_data_repository_requests_total", failedPolls)
	w.repo.proc.stop()

	// A datadeployer restarted now finds its live version on disk.
	var restarted string
	for name := range w.pods {
		restarted = name
		break
	}
	w.pods[restarted].restartDeployer(ctx, t)
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		ds, err := w.pods[restarted].deployerStatus()
		if err != nil {
			return false, err
		}
		return satisfied(ds.State == spec.DataLive && ds.Version == lkg.ID && ds.Digest == lkg.Digest,
			fmt.Errorf("restarted datadeployer reports %s", ds))
	})
	framework.Eventually(ctx, t, 60*time.Second, func() (bool, error) {
		n := registrySum(t, "autocrane_data_repository_requests_total", failedPolls) - failed
		return satisfied(n >= 3, fmt.Errorf("%v failed repository requests, want 3", n))
	})

	if after, _ := lineState(ctx, t, w.line); !reflect.DeepEqual(after, before) {
		t.Errorf("the state changed during the outage:\nbefore %+v\nafter  %+v", before, after)
	}
	for name, p := range w.kubelet.pods() {
		req, status := p.Annotations[spec.PrefixDataRequest+"models"], p.Annotations[spec.PrefixDataStatus+"models"]
		if _, live := liveOn(status, lkg); !requests(req, lkg) || !live {
			t.Errorf("pod %s during the outage: request %q, status %q; want %s live", name, req, status, lkg.ID)
		}
		// The restarted datadeployer's watchdog missed a probe or two.
		if h := p.Labels[spec.LabelHealth]; h != string(spec.LevelInfo) && name != restarted {
			t.Errorf("pod %s during the outage: health %q, want info", name, h)
		}
		w.checkFiles(t, w.pods[name], name, lkg)
	}
	for _, c := range w.kubelet.history()[mark:] {
		if !requests(c.request, lkg) {
			t.Errorf("pod %s was asked for %q during the outage", c.pod, c.request)
		}
	}

	// The repository comes back on its root and port, with its versions.
	w.repo.start(ctx, t)
	w.repo.waitVersions(ctx, t, "models", len(w.versions))
}

// restartResumes stops the manager in the middle of a rollout (its third
// wave asked its second pod) and starts a new one: the new manager goes on
// from the state ConfigMap, without starting over or moving a pod back.
func (w *dataRollout) restartResumes(ctx context.Context, t *testing.T) {
	lkg := w.lkg(ctx, t)
	from := w.kubelet.mark()
	v := w.publish(ctx, t, "v4")
	framework.Eventually(ctx, t, rolloutTimeout, func() (bool, error) {
		w.kubelet.check(t)
		n := len(w.requesting(v))
		return satisfied(n >= 2, fmt.Errorf("%d pods request %s, want 2", n, v.ID))
	})
	// The old manager's Events of the third wave are written before it
	// stops (the next wave is a /status read and a bake away).
	framework.Eventually(ctx, t, 30*time.Second, func() (bool, error) {
		n := len(w.versionEvents(ctx, t, "DataWaveStarted", v))
		return satisfied(n >= 2, fmt.Errorf("%d DataWaveStarted Events for %s, want 2", n, v.ID))
	})
	if err := suite.stopManager(); err != nil {
		t.Fatalf("stop manager: %v", err)
	}
	stopped := true
	defer func() {
		// Other tests need the shared manager, whatever happens here.
		if stopped {
			if err := restartManager(ctx); err != nil {
				t.Fatalf("restart manager: %v", err)
			}
		}
	}()
	before, _ := lineState(ctx, t, w.line)
	if got := w.requesting(v); len(got) != 2 {
		t.Errorf("when the manager stopped, pods %v requested %s, want 2 (the third wave)", got, v.ID)
	}
	if before.Rollout == nil || before.Rollout.Version != v || len(before.Rollout.Groups) != 1 {
		t.Fatalf("when the manager stopped, the state was %s with groups %+v; want %s rolling in one group", describeState(before), before.Rollout, v.ID)
	}
	for _, g := range before.Rollout.Groups {
		if g.Wave != 2 || g.Done {
			t.Errorf("when the manager stopped, the group was at wave index %d (done %v), want 2 (50%%)", g.Wave, g.Done)
		}
	}
	stopped = false
	if err := restartManager(ctx); err != nil {
		t.Fatalf("restart manager: %v", err)
	}

	w.rolloutPasses(ctx, t, from, v, &lkg, func(st datarollout.State) {
		if st.Rollout == nil {
			return
		}
		if st.Rollout.Version != v || !st.Rollout.Started.Equal(before.Rollout.Started) {
			t.Errorf("after the restart the rollout is %s started %s; it was %s started %s",
				st.Rollout.ID, st.Rollout.Started, v.ID, before.Rollout.Started)
		}
		for k, g := range st.Rollout.Groups {
			if b, ok := before.Rollout.Groups[k]; ok && g.Wave < b.Wave {
				t.Errorf("after the restart group %s is back at wave index %d, it was at %d", k, g.Wave, b.Wave)
			}
		}
	})
}

// versionEvents are the Events with reason on the Deployment whose note
// names version v, oldest first.
func (w *dataRollout) versionEvents(ctx context.Context, t *testing.T, reason string, v datarollout.Version) []eventsv1.Event {
	t.Helper()
	var out []eventsv1.Event
	for _, e := range events(ctx, t, w.ns, "Deployment", "web", reason) {
		if strings.Contains(e.Note, v.ID) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	return out
}

var waveNumber = regexp.MustCompile(`wave (\d+) of 4 `)

// checkWaveEvents checks the Events of v's rollout on the Deployment: one
// DataRolloutStarted, waves 1, 3 and 4 started and passed (wave 2, 10%,
// passes with wave 1), each wave started after the one before passed, and
// one DataPromoted.
func (w *dataRollout) checkWaveEvents(ctx context.Context, t *testing.T, v datarollout.Version) {
	t.Helper()
	waves := func(evs []eventsv1.Event) []string {
		var out []string
		for _, e := range evs {
			if m := waveNumber.FindStringSubmatch(e.Note); m != nil {
				out = append(out, m[1])
			}
		}
		return out
	}
	var started, passed []eventsv1.Event
	// Events are recorded asynchronously.
	framework.Eventually(ctx, t, 30*time.Second, func() (bool, error) {
		started, passed = w.versionEvents(ctx, t, "DataWaveStarted", v), w.versionEvents(ctx, t, "DataWavePassed", v)
		promoted := w.versionEvents(ctx, t, "DataPromoted", v)
		return satisfied(len(started) >= 3 && len(passed) >= 3 && len(promoted) == 1,
			fmt.Errorf("%d DataWaveStarted, %d DataWavePassed, %d DataPromoted Events for %s, want 3, 3, 1", len(started), len(passed), len(promoted), v.ID))
	})
	want := []string{"1", "3", "4"}
	if got := waves(started); !slices.Equal(got, want) {
		t.Errorf("DataWaveStarted Events for %s name waves %v, want %v", v.ID, got, want)
	}
	if got := waves(passed); !slices.Equal(got, want) {
		t.Errorf("DataWavePassed Events for %s name waves %v, want %v", v.ID, got, want)
	}
	for k := 1; k < min(len(started), len(passed)+1); k++ {
		if started[k].EventTime.Before(&passed[k-1].EventTime) {
			t.Errorf("%q (%s) came before %q (%s)", started[k].Note, started[k].EventTime.Format(time.RFC3339Nano), passed[k-1].Note, passed[k-1].EventTime.Format(time.RFC3339Nano))
		}
	}
	// One start, not a series: the rollout never started over.
	if evs := w.versionEvents(ctx, t, "DataRolloutStarted", v); len(evs) != 1 || evs[0].Series != nil {
		t.Errorf("DataRolloutStarted Events for %s: %+v, want one, once", v.ID, evs)
	}
}
