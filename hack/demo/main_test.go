package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestMain(m *testing.M) {
	// As main does: the demo's output is the story, not controller-runtime's
	// warning that no logger was set.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// TestDemoRuns runs `make demo`'s program to the end, against a real
// control plane, and checks each step's outcome in its output.
func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out, true); err != nil {
		t.Fatalf("demo failed: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"deployment.apps/web created",
		"deployment.apps/canary created",
		"poddisruptionbudget.policy/canary created",
		"native sidecar (initContainers, restartPolicy: Always, startup probe /readyz): autocrane-datadeployer",
		"container: app; mounts: autocrane-data at /data (ro)",
		"container: autocrane-watchdoghealthz, readiness probe /healthz",
		`metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://repo": scheme must be http or https`,
		"no kubelet here: the demo runs each pod's container as a local process at 127.0.x.y and reports it Running",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q\noutput:\n%s", want, text)
		}
	}
	checkWatchdogStory(t, text)
	checkDataStory(t, text)
	checkStopped(t, text)
}

// checkWatchdogStory checks that the failing pod's error, its eviction, and
// its replacement's health were printed, in the order they must happen.
func checkWatchdogStory(t *testing.T, text string) {
	t.Helper()
	m := regexp.MustCompile(`Making pod (\S+) fail`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("demo output names no failing pod\noutput:\n%s", text)
	}
	victim := m[1]
	m = regexp.MustCompile(`ReplicaSet \S+ created pod (\S+), replacing ` + regexp.QuoteMeta(victim)).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("demo output shows no replacement of %s\noutput:\n%s", victim, text)
	}
	replacement := m[1]
	steps := map[string][]string{
		"fail":        {"POST http://127.0.", "/fail: 200 OK"},
		"status":      {"pod " + victim + ": status.autocrane.io/alive: error/", "HTTP 500"},
		"label":       {"pod " + victim + ": label status.autocrane.io/health=error"},
		"evicted":     {"events.k8s.io Event Evicted on Pod " + victim + ", from autocrane-eviction: evicted through the Eviction API"},
		"gone":        {"pod " + victim + " is gone; the demo stops its process"},
		"replacement": {"ReplicaSet ", "created pod " + replacement},
		"runs":        {"pod " + replacement + ": testworkload at http://127.0.", "reported Running and Ready"},
		"healthy":     {"pod " + replacement + ": label status.autocrane.io/health=info"},
	}
	line := map[string]int{}
	for name, words := range steps {
		if line[name] = lineWith(text, words...); line[name] < 0 {
			t.Errorf("demo output lacks the %s step, a line with %q\noutput:\n%s", name, words, text)
		}
	}
	if t.Failed() {
		return
	}
	// The Evicted Event and the pod's deletion both follow the error, in
	// either order.
	for _, order := range [][2]string{
		{"fail", "status"}, {"status", "label"}, {"label", "evicted"}, {"label", "gone"},
		{"gone", "replacement"}, {"replacement", "runs"}, {"runs", "healthy"},
	} {
		if line[order[0]] > line[order[1]] {
			t.Errorf("the %s step (line %d) was printed after the %s step (line %d)\noutput:\n%s",
				order[0], line[order[0]], order[1], line[order[1]], text)
		}
	}
}

// lineWith is the index of the first line holding every word, or -1.
func lineWith(text string, words ...string) int {
	for i, line := range strings.Split(text, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return i
		}
	}
	return -1
}

// checkStopped checks that no process the demo started still answers, and
// that every temporary directory it named is gone.
func checkStopped(t *testing.T, text string) {
	t.Helper()
	urls := regexp.MustCompile(`(?:testworkload|app|datadeployer) at (http://127\.0\.[0-9.]+:[0-9]+)`).FindAllStringSubmatch(text, -1)
	if len(urls) == 0 {
		t.Fatalf("demo output names no pod process\noutput:\n%s", text)
	}
	for _, m := range regexp.MustCompile(`datarepository --listen=(127\.0\.0\.1:[0-9]+)`).FindAllStringSubmatch(text, -1) {
		urls = append(urls, []string{m[0], "http://" + m[1]})
	}
	c := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		if resp, err := c.Get(u[1] + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after the demo ended (%s)", u[1], resp.Status)
		}
	}
	for _, m := range regexp.MustCompile(`(/\S*autocrane-demo-(?:git|repository|kubelet)-[0-9]+)`).FindAllStringSubmatch(text, -1) {
		if _, err := os.Stat(m[1]); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there after the demo ended (%v)", m[1], err)
		}
	}
}

// watchedOutput is the demo's output, which a test can wait on.
type watchedOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *watchedOutput) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *watchedOutput) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the output matches re, or the demo ended, or the
// deadline passed, and returns the match.
func (w *watchedOutput) waitFor(t *testing.T, re *regexp.Regexp, ended <-chan struct{}) []string {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		if m := re.FindStringSubmatch(w.String()); m != nil {
			return m
		}
		select {
		case <-ended:
			t.Fatalf("the demo ended before printing %s\noutput:\n%s", re, w.String())
		case <-deadline:
			t.Fatalf("the demo printed no %s within 3 minutes\noutput:\n%s", re, w.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestDemoStopsOnCtrlC cancels the demo's context (what Ctrl-C does) while
// the canary's pods run, and after the demo once it ran a replacement on
// its own, and checks that the demo returns and that every pod process it
// started is gone.
func TestDemoStopsOnCtrlC(t *testing.T) {
	for _, tc := range []struct {
		name string
		// act runs once the demo is under way, then Ctrl-C is pressed.
		act func(t *testing.T, out *watchedOutput, ended <-chan struct{})
		// interrupted: run returns an error (from the step it was in);
		// the demo's main reports it as an interruption.
		interrupted bool
	}{
		{
			name: "while pods run",
			act: func(t *testing.T, out *watchedOutput, ended <-chan struct{}) {
				out.waitFor(t, regexp.MustCompile(`reported Running and Ready`), ended)
			},
			interrupted: true,
		},
		{
			name: "during the data rollout",
			act: func(t *testing.T, out *watchedOutput, ended <-chan struct{}) {
				out.waitFor(t, regexp.MustCompile(`AutoCrane rolls v2 out wave by wave`), ended)
			},
			interrupted: true,
		},
		{
			name: "after the demo, once another pod failed and was replaced, and a new data version rolls out",
			act: func(t *testing.T, out *watchedOutput, ended <-chan struct{}) {
				m := out.waitFor(t, regexp.MustCompile(`curl -X POST (\S+)/fail +# pod (\S+)`), ended)
				out.waitFor(t, regexp.MustCompile(`Press Ctrl-C to stop`), ended)
				resp, err := http.Post(m[1]+"/fail", "", nil)
				if err != nil {
					t.Fatalf("POST %s/fail: %v", m[1], err)
				}
				resp.Body.Close()
				out.waitFor(t, regexp.MustCompile(`pod `+regexp.QuoteMeta(m[2])+` is gone; its process is stopped`), ended)
				out.waitFor(t, regexp.MustCompile(`(?s)Press Ctrl-C to stop.*pod \S+: testworkload at \S+, reported Running and Ready`), ended)
				// The printed command publishes a version, and the demo
				// shows its rollout.
				commit := out.waitFor(t, regexp.MustCompile(`\n    (echo v4 > .* commit -qam 'models v4')\n`), ended)
				cmd := exec.Command("sh", "-c", commit[1])
				cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", commit[1], err, b)
				}
				out.waitFor(t, regexp.MustCompile(`(?s)Press Ctrl-C to stop.*rolling out the version of commit [0-9a-f]{7}.*asks for the version of commit`), ended)
			},
			interrupted: false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			out := &watchedOutput{}
			ended := make(chan struct{})
			var err error
			go func() {
				defer close(ended)
				err = run(ctx, out, false)
			}()
			// Also when act fails the test: stop the demo and wait for it.
			t.Cleanup(func() {
				cancel()
				<-ended
			})
			tc.act(t, out, ended)
			cancel()
			<-ended
			text := out.String()
			if got := err != nil; got != tc.interrupted {
				t.Errorf("run = %v, want an error: %t\noutput:\n%s", err, tc.interrupted, text)
			}
			checkStopped(t, text)
		})
	}
}
