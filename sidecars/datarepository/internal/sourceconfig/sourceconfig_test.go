package sourceconfig

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

// downwardAPI formats annotations the way the kubelet writes them.
func downwardAPI(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

func errStrings(m map[string]error) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v.Error()
	}
	return out
}

func TestFromAnnotationsFile(t *testing.T) {
	file := downwardAPI(map[string]string{
		"data.autocrane.io/models":  "git:https://git.example/models.git#v2",
		"data.autocrane.io/config":  "http:https://cdn.example/config.tar.gz",
		"data.autocrane.io/local":   "dir:/srv/data",
		"data.autocrane.io/bad":     "ftp:x",
		"data.autocrane.io/Upper":   "dir:/x",
		"data.autocrane.io/consume": "models",
		"data.autocrane.io/secret":  "http:https://u:hunter2@cdn.example/f",
		"kubernetes.io/config.seen": "2026-01-01T00:00:00Z",
		"multi-line":                "a\nb \"quoted\"",
	}) + "garbage line\nk=unquoted\n"
	ann, problems := ParseAnnotationsFile([]byte(file))
	if ann["multi-line"] != "a\nb \"quoted\"" {
		t.Fatalf("quoted value: %q", ann["multi-line"])
	}
	if got := fmt.Sprint(problems); got != `[annotations file line 10: want key="value" annotations file line 11 (k): the value is not a quoted string]` {
		t.Fatalf("problems %s", got)
	}
	c := FromAnnotations(ann)
	want := map[string]spec.Source{
		"models": {Name: "models", Kind: spec.SourceGit, Location: "https://git.example/models.git#v2"},
		"config": {Name: "config", Kind: spec.SourceHTTP, Location: "https://cdn.example/config.tar.gz"},
		"local":  {Name: "local", Kind: spec.SourceDir, Location: "/srv/data"},
	}
	if diff := cmp.Diff(want, c.Sources); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	invalid := errStrings(c.Invalid)
	if !slices.Equal(slices.Sorted(maps.Keys(invalid)), []string{"Upper", "bad", "consume", "secret"}) {
		t.Fatalf("invalid %v", invalid)
	}
	if !strings.Contains(invalid["consume"], "names a source to consume") || !strings.Contains(invalid["bad"], `unknown source kind "ftp"`) {
		t.Errorf("messages %v", invalid)
	}
	if strings.Contains(invalid["secret"], "hunter2") || !strings.Contains(invalid["secret"], "REDACTED") {
		t.Errorf("a refused value with a password: %s", invalid["secret"])
	}
}

func TestLoaderMergesAndReportsClashes(t *testing.T) {
	dir := t.TempDir()
	ann := filepath.Join(dir, "annotations")
	os.WriteFile(ann, []byte(downwardAPI(map[string]string{
		"data.autocrane.io/a": "dir:/a", "data.autocrane.io/b": "dir:/b-ann", "data.autocrane.io/c": "dir:/c-ann",
	})), 0o644)
	srcFile := filepath.Join(dir, "sources.yaml")
	os.WriteFile(srcFile, []byte("b: dir:/b-file\nd: 'git:https://h/d.git'\n"), 0o644)
	flag, err := ParseSourceFlag("c=dir:/c-flag")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Loader{AnnotationsFile: ann, SourcesFile: srcFile, Flags: []spec.Source{flag}}.Load()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for n, s := range c.Sources {
		got[n] = string(s.Kind) + ":" + s.Location
	}
	want := map[string]string{"a": "dir:/a", "b": "dir:/b-file", "c": "dir:/c-flag", "d": "git:https://h/d.git"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if got := fmt.Sprint(c.Problems); got != "[source b is declared in the annotations and in the sources file; the sources file wins source c is declared in the files and in --source; --source wins]" {
		t.Errorf("problems %s", got)
	}
	if _, err := (Loader{AnnotationsFile: filepath.Join(dir, "missing")}).Load(); err == nil {
		t.Fatal("a missing file is no error")
	}
	os.WriteFile(srcFile, []byte("[not, a, map]"), 0o644)
	if _, err := (Loader{SourcesFile: srcFile}).Load(); err == nil || !strings.Contains(err.Error(), "want a map of names to KIND:LOCATION") {
		t.Fatalf("a bad sources file: %v", err)
	}
}

func TestParseSourceFlag(t *testing.T) {
	tests := map[string]struct{ in, want, wantErr string }{
		"git":       {in: "m=git:https://h/r.git#main", want: "m git https://h/r.git#main"},
		"no equals": {in: "git:https://h/r", wantErr: `--source "git:https://h/r": want NAME=KIND:LOCATION`},
		"bad name":  {in: "M_1=dir:/x", wantErr: `--source[M_1]: source name "M_1" must be a DNS-1123 label`},
		"bad kind":  {in: "m=svn:x", wantErr: `--source[m]: Invalid value: "svn:x": unknown source kind "svn"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := ParseSourceFlag(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if got := s.Name + " " + string(s.Kind) + " " + s.Location; err != nil || got != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

// TestWatcherSeesSymlinkSwap swaps a "..data" symlink the way the kubelet
// updates a downward API volume and waits for the signal.
func TestWatcherSeesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "..v1"), filepath.Join(dir, "..v2")
	os.Mkdir(v1, 0o755)
	os.Mkdir(v2, 0o755)
	os.WriteFile(filepath.Join(v1, "annotations"), []byte("a=\"1\"\n"), 0o644)
	os.WriteFile(filepath.Join(v2, "annotations"), []byte("a=\"2\"\n"), 0o644)
	os.Symlink("..v1", filepath.Join(dir, "..data"))
	os.Symlink("..data/annotations", filepath.Join(dir, "annotations"))

	clk := clocktesting.NewFakeClock(time.Unix(0, 0))
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &Watcher{Files: []string{filepath.Join(dir, "annotations")}, Interval: time.Hour, Clock: clk, Log: logr.Discard()}
	done := make(chan struct{})
	go func() { w.Run(ctx, changed); close(done) }()
	// Wait until the poll ticker exists, so the watch is set up too.
	deadline := time.Now().Add(30 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never started its poll")
		}
		time.Sleep(5 * time.Millisecond)
	}
	os.Symlink("..v2", filepath.Join(dir, "..data.tmp"))
	os.Rename(filepath.Join(dir, "..data.tmp"), filepath.Join(dir, "..data"))
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no signal after the symlink swap")
	}
	// The poll fallback signals too.
	for len(changed) > 0 {
		<-changed
	}
	clk.Step(time.Hour)
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("no signal from the poll")
	}
	cancel()
	<-done
	data, _ := os.ReadFile(filepath.Join(dir, "annotations"))
	if ann, _ := ParseAnnotationsFile(data); ann["a"] != "2" {
		t.Fatalf("after the swap the file reads %q", strconv.Quote(string(data)))
	}
}
