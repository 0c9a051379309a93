package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// storyLines is the demo's output as lines, with where the next expected
// step must be looked for.
type storyLines struct {
	t     *testing.T
	text  string
	lines []string
	at    int
}

// next finds the first line from the current position that holds every
// word, moves there and returns its index; the story must have it.
func (s *storyLines) next(what string, words ...string) int {
	s.t.Helper()
	i := indexFrom(s.lines, s.at, words...)
	if i < 0 {
		s.t.Fatalf("the data story lacks %s after line %d (%q): a line with %q\noutput:\n%s", what, s.at, s.lines[s.at], words, s.text)
	}
	s.at = i
	return i
}

// nextRow finds pod's row in a table of the reader's pods, from the
// current position, whose health, request, status and file are as given.
func (s *storyLines) nextRow(what, pod, health, request, status, file string) {
	s.t.Helper()
	re := regexp.MustCompile(`^   \| ` + regexp.QuoteMeta(pod) + `\s+127\.0\.[0-9.]+\s+` + health + `\s+` + request + `\s+` +
		regexp.QuoteMeta(status) + `.*\s` + file + `$`)
	for i := s.at; i < len(s.lines); i++ {
		if re.MatchString(s.lines[i]) {
			s.at = i
			return
		}
	}
	s.t.Fatalf("the data story lacks %s after line %d (%q): a line matching %s\noutput:\n%s", what, s.at, s.lines[s.at], re, s.text)
}

// indexFrom is the index of the first line from from on that holds every
// word, or -1.
func indexFrom(lines []string, from int, words ...string) int {
	for i := from; i < len(lines); i++ {
		all := true
		for _, w := range words {
			all = all && strings.Contains(lines[i], w)
		}
		if all {
			return i
		}
	}
	return -1
}

// checkDataStory checks that the data story happened, in the order it
// must: the repository serves v1; the reader's pods run; v1 and then v2
// roll out in waves of 1, 2 and 4 pods and become the last known good
// version, with every pod's app reading them; v3 fails the first pod that
// reads it and is rolled back to v2 and marked bad; the app recovers.
func checkDataStory(t *testing.T, text string) {
	t.Helper()
	start := strings.Index(text, "The data story.")
	if start < 0 {
		t.Fatalf("demo output has no data story\noutput:\n%s", text)
	}
	s := &storyLines{t: t, text: text, lines: strings.Split(text[start:], "\n")}
	s.next("the repository's first version", "/v1/sources/models: a git source", "1 version:")
	s.next("the reader Deployment", "deployment.apps/reader created")
	var pods []string
	for _, m := range regexp.MustCompile(`pod (reader-\S+): app at http://127\.0\.[0-9.]+:[0-9]+, datadeployer at http://127\.0\.[0-9.]+:[0-9]+, reported Running`).FindAllStringSubmatch(text, -1) {
		pods = append(pods, m[1])
	}
	if len(pods) != 4 {
		t.Fatalf("the demo ran %d reader pods %v, want 4\noutput:\n%s", len(pods), pods, text)
	}
	s.next("the pods' health", "every pod: status.autocrane.io/health=info")

	v1 := s.next("the first rollout", "v1 goes out.")
	v1End := s.next("v1 promoted", "state ConfigMap autocrane-system/autocrane-data-", ": last known good v1")
	checkRollout(t, s, "v1", v1, v1End, pods)
	// The Events are recorded after the state is written.
	shown := s.next("v1 on every pod", "v1 is live everywhere")
	for _, event := range []string{
		"Event DataRolloutStarted on Deployment reader: rolling out version v1 of source models",
		"Event DataWaveStarted on Deployment reader: starting wave 1 of 4 (1) of version v1",
		"Event DataWavePassed on Deployment reader: wave 1 of 4 (1) of version v1 passed",
		"Event DataPromoted on Deployment reader: version v1 of source models is the last known good version",
	} {
		if i := indexFrom(s.lines[:shown], v1, event); i < 0 {
			t.Errorf("the rollout of v1 lacks a line with %q\noutput:\n%s", event, text)
		}
	}
	for _, pod := range pods {
		s.nextRow("pod "+pod+" on v1 in the table", pod, "info", "v1", "live v1 since", "v1")
	}
	for _, pod := range pods {
		s.next("pod "+pod+"'s annotations", "pod "+pod+":")
		s.next("pod "+pod+"'s request", "request.data.autocrane.io/models: models/")
		s.next("pod "+pod+"'s status", "status.data.autocrane.io/models: live/")
		s.next("pod "+pod+"'s file", "/"+pod+"/data/models/version.txt: v1")
	}

	s.next("the commit of v2", `version.txt = "v2"`)
	v2 := s.next("the rollout of v2", "rolling out v2 (ReplicaSet/reader-", "at wave 1)")
	v2End := s.next("v2 promoted", "state ConfigMap autocrane-system/autocrane-data-", ": last known good v2")
	checkRollout(t, s, "v2", v2, v2End, pods)
	for _, pod := range pods {
		s.nextRow("pod "+pod+" on v2 in the table", pod, "info", "v2", "live v2 since", "v2")
	}

	s.next("the commit of v3", `version.txt = "v3"`)
	s.next("the rollout of v3", "rolling out v3 (ReplicaSet/reader-", "at wave 1)")
	m := regexp.MustCompile(`pod (\S+)'s app read v3 and judges it bad: the app's watchdog fails on v3 \(the demo sent POST http://\S+/fail\)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("the data story does not say which app failed on v3\noutput:\n%s", text)
	}
	victim := m[1]
	asked := indexFrom(s.lines, s.at, "pod "+victim+": request.data.autocrane.io/models asks for v3")
	failed := s.next("the app's failure", "the app's watchdog fails on v3")
	if asked < 0 || asked > failed {
		t.Errorf("pod %s failed on v3 (line %d) before it was asked for v3 (line %d)\noutput:\n%s", victim, failed, asked, text)
	}
	s.next("the failing pod's error", "pod "+victim+": label status.autocrane.io/health=error")
	for _, line := range []string{
		": last known good v2; bad: v3",
		"Event DataWaveFailed on Deployment reader (pod " + victim + "): wave 1 of 4 (1) of version v3 failed: pod " + victim + " went to error on version v3",
		"Event DataRolledBack on Deployment reader (pod " + victim + "): version v3 of source models failed",
		"pod " + victim + ": request.data.autocrane.io/models asks for v2",
	} {
		if indexFrom(s.lines, failed, line) < 0 {
			t.Errorf("after the failure, the data story lacks a line with %q\noutput:\n%s", line, text)
		}
	}
	// Every pod asked for v3 goes back to v2, and its app reads v2 again.
	for _, pod := range pods {
		if i := indexFrom(s.lines, v2End, "pod "+pod+": request.data.autocrane.io/models asks for v3"); i >= 0 {
			if j := indexFrom(s.lines, i, "pod "+pod+": request.data.autocrane.io/models asks for v2"); j < 0 {
				t.Errorf("pod %s was asked for v3 and never back for v2\noutput:\n%s", pod, text)
			} else if indexFrom(s.lines, j, "pod "+pod+": its app reads models/version.txt: v2") < 0 {
				t.Errorf("pod %s's app never read v2 again\noutput:\n%s", pod, text)
			}
		}
	}
	s.next("the rollback", "v3 was rolled back")
	for _, pod := range pods {
		s.nextRow("pod "+pod+" back on v2 in the table", pod, `\S+`, "v2", "live v2 since", "v2")
	}
	s.next("v3 marked bad in the state", "bad:             v3 (", "pod "+victim+" went to error on version v3")
	s.next("the recovery", "The app's watchdog recovers (POST http://", "/recover)")
	s.next("the recovered pod", "pod "+victim+": label status.autocrane.io/health=info")
}

// checkRollout checks the rollout of version between lines from and to:
// AutoCrane said it went out in waves of 1, 2 and 4 pods (the default
// waves 1,10%,50%,100% of 4 pods); the pods were asked for it in that
// order, each wave's first pod only once every pod asked before held the
// version live; and every pod's app reads it.
//
// Where one wave ends is not read off the pod lines: within a wave, a pod
// asked first may go live before the next one's request is seen. It is
// sound to check that a wave waited, as the pods' lines come from one
// watch, in the order the API server wrote them, and AutoCrane asks a
// wave's pods only after it saw the pods before them live.
func checkRollout(t *testing.T, s *storyLines, version string, from, to int, pods []string) {
	t.Helper()
	for _, p := range rolloutProblems(s.lines, version, from, to, pods) {
		t.Errorf("%s\noutput:\n%s", p, s.text)
	}
}

// rolloutProblems is what checkRollout finds wrong, one sentence each.
func rolloutProblems(lines []string, version string, from, to int, pods []string) []string {
	var problems []string
	for _, started := range []string{
		"starting wave 1 of 4 (1) of version " + version + ": asking 1 more pods, 1 of ",
		"starting wave 3 of 4 (50%) of version " + version + ": asking 1 more pods, 2 of 4 pods",
		"starting wave 4 of 4 (100%) of version " + version + ": asking 2 more pods, 4 of 4 pods",
	} {
		if indexFrom(lines, from, "Event DataWaveStarted on Deployment reader: "+started) < 0 {
			problems = append(problems, fmt.Sprintf("the rollout of %s lacks a line with %q", version, started))
		}
	}
	asks := regexp.MustCompile(`pod (\S+): request\.data\.autocrane\.io/models asks for ` + version + `$`)
	live := regexp.MustCompile(`pod (\S+): status\.data\.autocrane\.io/models: live ` + version + ` since`)
	var asked []string
	// waited[i]: when pod asked[i] was asked, every pod asked before held
	// the version live.
	var waited []bool
	held := map[string]bool{}
	for _, line := range lines[from : to+1] {
		if m := live.FindStringSubmatch(line); m != nil {
			held[m[1]] = true
		}
		m := asks.FindStringSubmatch(line)
		if m == nil || slices.Contains(asked, m[1]) {
			continue
		}
		all := true
		for _, p := range asked {
			all = all && held[p]
		}
		asked = append(asked, m[1])
		waited = append(waited, all)
	}
	if len(asked) != len(pods) {
		problems = append(problems, fmt.Sprintf("%d pods %v were asked for %s, want all %d", len(asked), asked, version, len(pods)))
	}
	// Waves reach 1, 2 and 4 pods: the 2nd and 3rd pods asked each start
	// a wave.
	for _, first := range []int{1, 2} {
		if first < len(waited) && !waited[first] {
			problems = append(problems, fmt.Sprintf("pod %s was asked for %s before each of %v held it live, but it starts a wave",
				asked[first], version, asked[:first]))
		}
	}
	for _, pod := range pods {
		if indexFrom(lines[:to+1], from, "pod "+pod+": its app reads models/version.txt: "+version) < 0 {
			problems = append(problems, fmt.Sprintf("during the rollout of %s, pod %s's app did not read it", version, pod))
		}
	}
	return problems
}

// TestRolloutProblems checks the rollout checker on a rollout a loaded CI
// machine printed, in which a pod of the last wave went live before the
// wave's other pod was asked; and on that rollout broken in the ways the
// checker must catch.
func TestRolloutProblems(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "rollout-v1-fast-deployer.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.TrimRight(string(raw), "\n")
	pods := []string{"reader-6c9775d8db-5c8ml", "reader-6c9775d8db-j4qxw", "reader-6c9775d8db-kqqlk", "reader-6c9775d8db-qph69"}
	// moveAfter moves the first line holding line after the first line
	// holding after.
	moveAfter := func(text, line, after string) string {
		lines := strings.Split(text, "\n")
		i, j := indexFrom(lines, 0, line), indexFrom(lines, 0, after)
		if i < 0 || j < 0 {
			t.Fatalf("the fixture has no line with %q or %q", line, after)
		}
		moved := lines[i]
		lines = slices.Delete(lines, i, i+1)
		j = indexFrom(lines, 0, after)
		return strings.Join(slices.Insert(lines, j+1, moved), "\n")
	}
	drop := func(text, line string) string {
		lines := strings.Split(text, "\n")
		return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, line) }), "\n")
	}
	tests := []struct {
		name string
		text string
		want []string // a word of each problem, in order
	}{
		{name: "as printed", text: text},
		{
			name: "the second wave asked before the first pod was live",
			text: moveAfter(text, "pod reader-6c9775d8db-j4qxw: status.data.autocrane.io/models: live v1",
				"pod reader-6c9775d8db-5c8ml: request.data.autocrane.io/models asks for v1"),
			want: []string{"pod reader-6c9775d8db-5c8ml was asked for v1 before each of [reader-6c9775d8db-j4qxw] held it live"},
		},
		{
			name: "the last wave asked before the second wave's pod was live",
			text: moveAfter(text, "pod reader-6c9775d8db-5c8ml: status.data.autocrane.io/models: live v1",
				"pod reader-6c9775d8db-kqqlk: request.data.autocrane.io/models asks for v1"),
			want: []string{"pod reader-6c9775d8db-kqqlk was asked for v1 before each of"},
		},
		{
			name: "a pod never asked",
			text: drop(text, "pod reader-6c9775d8db-qph69: request.data.autocrane.io/models asks for v1"),
			want: []string{"3 pods [reader-6c9775d8db-j4qxw reader-6c9775d8db-5c8ml reader-6c9775d8db-kqqlk] were asked for v1, want all 4"},
		},
		{
			name: "no wave of 50%",
			text: drop(text, "Event DataWaveStarted on Deployment reader: starting wave 3 of 4 (50%)"),
			want: []string{`lacks a line with "starting wave 3 of 4 (50%) of version v1`},
		},
		{
			name: "an app that never read the version",
			text: drop(text, "pod reader-6c9775d8db-qph69: its app reads models/version.txt: v1"),
			want: []string{"pod reader-6c9775d8db-qph69's app did not read it"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := strings.Split(tt.text, "\n")
			got := rolloutProblems(lines, "v1", 0, len(lines)-1, pods)
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}
