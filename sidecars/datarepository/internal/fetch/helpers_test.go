package fetch

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/canonical"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

// testRepo is a real git repository in a temporary directory.
type testRepo struct {
	t   *testing.T
	dir string
	env []string
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{t: t, dir: t.TempDir(), env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
	}}
	r.git("init", "-q", "-b", "main")
	return r
}

func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (path -> content; "" removes) and commits them.
func (r *testRepo) commit(files map[string]string) string {
	r.t.Helper()
	for p, content := range files {
		full := filepath.Join(r.dir, p)
		if content == "" {
			os.Remove(full)
			continue
		}
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", "change")
	return r.git("rev-parse", "HEAD")
}

func (r *testRepo) url() string { return "file://" + r.dir }

// countingGit is a git wrapper script that appends each subcommand line to
// a log, so tests count real fetches.
func countingGit(t *testing.T) (path string, count func(sub string) int, argv func() string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	real, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "git")
	script := "#!/bin/sh\necho \"$*\" >> '" + log + "'\nexec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func() string { b, _ := os.ReadFile(log); return string(b) }
	count = func(sub string) int {
		n := 0
		for line := range strings.SplitSeq(read(), "\n") {
			if fields := strings.Fields(line); len(fields) > 1 && fields[1] == sub {
				n++
			}
		}
		return n
	}
	return path, count, read
}

// contents unpacks a canonical tar into path -> content ("/" for dirs).
func contents(t *testing.T, res *Result) map[string]string {
	t.Helper()
	var buf bytes.Buffer
	if err := res.Write(&buf); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return tarContents(t, buf.Bytes())
}

func tarContents(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeDir {
			out[h.Name] = "/"
			continue
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newGit(t *testing.T, location, gitPath string, insecure bool) *Git {
	t.Helper()
	remote, err := ParseGitLocation(location)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	return &Git{
		Location: location, Remote: remote, AllowInsecure: insecure,
		RepoDir: filepath.Join(root, "repo"), HomeDir: filepath.Join(root, "home"), GitPath: gitPath,
		Limits: canonical.Limits{MaxBytes: 1 << 30},
	}
}

// mustFetch fetches and closes the result at the end of the test.
func mustFetch(t *testing.T, f Fetcher, prev store.Origin) *Result {
	t.Helper()
	res, err := f.Fetch(t.Context(), prev)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	t.Cleanup(res.Close)
	return res
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }
