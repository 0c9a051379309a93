package fetch

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

func TestGitNewCommitNewContentUnchangedFetchesNothing(t *testing.T) {
	repo := newTestRepo(t)
	c1 := repo.commit(map[string]string{"a.txt": "one", "dir/b.txt": "bee"})
	gitPath, count, _ := countingGit(t)
	g := newGit(t, repo.url(), gitPath, true)

	res := mustFetch(t, g, store.Origin{})
	if res.Unchanged || res.Revision != c1 {
		t.Fatalf("first fetch: unchanged %v revision %s, want %s", res.Unchanged, res.Revision, c1)
	}
	if got, want := keys(contents(t, res)), []string{"a.txt", "dir/", "dir/b.txt"}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if n := count("fetch"); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}

	// Nothing changed: ls-remote only.
	again := mustFetch(t, g, res.Origin)
	if !again.Unchanged {
		t.Fatal("unchanged remote reported changed")
	}
	if n := count("fetch"); n != 1 {
		t.Fatalf("%d fetches after an unchanged check, want still 1", n)
	}
	if n := count("ls-remote"); n != 2 {
		t.Fatalf("%d ls-remotes, want 2", n)
	}

	c2 := repo.commit(map[string]string{"a.txt": "two"})
	third := mustFetch(t, g, res.Origin)
	if third.Unchanged || third.Revision != c2 {
		t.Fatalf("after a commit: unchanged %v revision %s, want %s", third.Unchanged, third.Revision, c2)
	}
	if got := contents(t, third)["a.txt"]; got != "two" {
		t.Fatalf("a.txt = %q, want two", got)
	}
	if n := count("fetch"); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestGitBranchAndTag(t *testing.T) {
	repo := newTestRepo(t)
	repo.commit(map[string]string{"v": "tagged"})
	repo.git("tag", "-a", "v1", "-m", "release 1")
	repo.git("tag", "light")
	repo.commit(map[string]string{"v": "main"})
	repo.git("checkout", "-q", "-b", "release")
	repo.commit(map[string]string{"v": "release"})
	repo.git("checkout", "-q", "main")

	tests := map[string]struct{ ref, want string }{
		"default HEAD":          {ref: "", want: "main"},
		"branch":                {ref: "#release", want: "release"},
		"annotated tag":         {ref: "#v1", want: "tagged"},
		"lightweight tag":       {ref: "#light", want: "tagged"},
		"full ref":              {ref: "#refs/heads/release", want: "release"},
		"branch named like tag": {ref: "#main", want: "main"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := newGit(t, repo.url()+tc.ref, "git", true)
			res := mustFetch(t, g, store.Origin{})
			if got := contents(t, res)["v"]; got != tc.want {
				t.Fatalf("v = %q, want %q", got, tc.want)
			}
			if again := mustFetch(t, g, res.Origin); !again.Unchanged {
				t.Fatal("second check of an unchanged ref is not Unchanged")
			}
		})
	}
	g := newGit(t, repo.url()+"#nope", "git", true)
	if _, err := g.Fetch(t.Context(), store.Origin{}); err == nil || err.Error() != `git ls-remote: no branch or tag "nope"` {
		t.Fatalf("missing ref: %v", err)
	}
}

func TestGitRefusesSymlinks(t *testing.T) {
	repo := newTestRepo(t)
	repo.commit(map[string]string{"ok.txt": "fine"})
	os.Symlink("/etc/passwd", filepath.Join(repo.dir, "evil"))
	c := repo.commit(nil)
	_, err := newGit(t, repo.url(), "git", true).Fetch(t.Context(), store.Origin{})
	want := `commit ` + c + `: "evil" is a symbolic link; a source may contain only directories and regular files`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestGitExecutableBitAndSubmodule(t *testing.T) {
	repo := newTestRepo(t)
	repo.commit(map[string]string{"run.sh": "#!/bin/sh"})
	repo.git("update-index", "--chmod=+x", "run.sh")
	// A gitlink, as a submodule leaves it, without a checkout of its own.
	repo.git("update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",sub")
	repo.git("commit", "-q", "-m", "x")
	res := mustFetch(t, newGit(t, repo.url(), "git", true), store.Origin{})
	got := contents(t, res)
	if got["sub/"] != "/" || got["run.sh"] != "#!/bin/sh" {
		t.Fatalf("got %v", got)
	}
}

func TestGitInsecureTransportsNeedAllowance(t *testing.T) {
	repo := newTestRepo(t)
	repo.commit(map[string]string{"a": "a"})
	_, err := newGit(t, repo.url(), "git", false).Fetch(t.Context(), store.Origin{})
	if err == nil || err.Error() != "git transport file:// is plaintext or local; allow it for this source with --allow-insecure" {
		t.Fatalf("got %v", err)
	}
}

// TestGitConfigBlocksHelpers bypasses ParseGitLocation: even then, git's
// protocol.allow configuration refuses ext:: and the other helpers.
func TestGitConfigBlocksHelpers(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "pwned")
	g := newGit(t, "https://example.invalid/r.git", "git", true)
	g.Remote = GitRemote{URL: "ext::sh -c touch% " + marker, Scheme: "https"}
	_, err := g.Fetch(t.Context(), store.Origin{})
	if err == nil || !strings.Contains(err.Error(), "transport 'ext' not allowed") {
		t.Fatalf("got %v, want git to refuse the ext transport", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the ext:: command ran")
	}
}

func TestParseGitLocation(t *testing.T) {
	tests := map[string]struct {
		in                   string
		wantURL, wantScheme  string
		wantRef, wantErrPart string
	}{
		"https":              {in: "https://git.example/r.git", wantURL: "https://git.example/r.git", wantScheme: "https"},
		"https with ref":     {in: "https://git.example/r.git#v1.2", wantURL: "https://git.example/r.git", wantScheme: "https", wantRef: "v1.2"},
		"ssh url":            {in: "ssh://git@git.example:2222/r.git", wantURL: "ssh://git@git.example:2222/r.git", wantScheme: "ssh"},
		"scp-like":           {in: "git@git.example:org/r.git#main", wantURL: "git@git.example:org/r.git", wantScheme: "ssh", wantRef: "main"},
		"file":               {in: "file:///srv/r", wantURL: "file:///srv/r", wantScheme: "file"},
		"git plaintext":      {in: "git://git.example/r", wantURL: "git://git.example/r", wantScheme: "git"},
		"ext transport":      {in: "ext::sh -c id", wantErrPart: "white space"},
		"ext no space":       {in: "ext::evil", wantErrPart: "transport helpers (such as ext::) are not allowed"},
		"fd transport":       {in: "fd::3", wantErrPart: "transport helpers"},
		"option-like":        {in: "--upload-pack=touch /tmp/x", wantErrPart: "white space"},
		"option-like tight":  {in: "-oProxyCommand=x", wantErrPart: "must not start with '-'"},
		"ssh host option":    {in: "ssh://-oProxyCommand=x/r", wantErrPart: "must not start with '-'"},
		"password":           {in: "https://u:hunter2@git.example/r", wantErrPart: "passwords in URLs are not allowed"},
		"local path":         {in: "/srv/repo", wantErrPart: "not a URL (local paths need file://)"},
		"other scheme":       {in: "ftp://h/r", wantErrPart: `scheme "ftp" is not allowed`},
		"ref option-like":    {in: "https://h/r#-x", wantErrPart: "not starting with"},
		"ref revision expr":  {in: "https://h/r#main@{1}", wantErrPart: "letters, digits"},
		"ref dot-dot":        {in: "https://h/r#a..b", wantErrPart: "not a valid branch or tag name"},
		"empty ref":          {in: "https://h/r#", wantErrPart: "empty ref"},
		"relative file path": {in: "file://relative/x", wantErrPart: "file:// URLs name no host"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseGitLocation(tc.in)
			if tc.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, tc.wantErrPart)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil || got.URL != tc.wantURL || got.Scheme != tc.wantScheme || got.Ref != tc.wantRef {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

// TestGitHangIsKilled runs a "git" that starts a child and hangs: the
// timeout must end the check and kill the whole process group.
func TestGitHangIsKilled(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	script := "#!/bin/sh\nsleep 600 &\necho $! > '" + pids + "'\nwait\n"
	gitPath := filepath.Join(dir, "git")
	os.WriteFile(gitPath, []byte(script), 0o755)
	g := newGit(t, "https://git.example/r.git", gitPath, false)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := g.Fetch(ctx, store.Origin{})
	if err == nil || !strings.Contains(err.Error(), "stopped: context deadline exceeded") {
		t.Fatalf("got %v, want the timeout", err)
	}
	data, _ := os.ReadFile(pids)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
	if perr != nil {
		t.Fatalf("the child's pid: %q", data)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatal("git's child survived the timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gitHTTPServer serves repo over git's smart HTTP (git http-backend as a
// CGI), behind a check of the Authorization header.
func gitHTTPServer(t *testing.T, repo *testRepo, wantAuth string) *httptest.Server {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(repo.dir), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir()},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != wantAuth {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGitCredentialsOverHTTPNeverOnArgv(t *testing.T) {
	repo := newTestRepo(t)
	repo.commit(map[string]string{"secret.txt": "data"})
	srv := gitHTTPServer(t, repo, "Bearer s3cr3t-token")
	gitPath, _, argv := countingGit(t)
	location := srv.URL + "/" + filepath.Base(repo.dir)
	g := newGit(t, location, gitPath, true)

	_, err := g.Fetch(t.Context(), store.Origin{})
	if err == nil || !strings.Contains(err.Error(), "git ls-remote") {
		t.Fatalf("without credentials: %v", err)
	}
	g.Credentials = func() (Credentials, error) { return Credentials{Token: "s3cr3t-token"}, nil }
	res := mustFetch(t, g, store.Origin{})
	if contents(t, res)["secret.txt"] != "data" {
		t.Fatal("wrong content")
	}
	if strings.Contains(argv(), "s3cr3t") {
		t.Fatalf("the token is on a command line:\n%s", argv())
	}

	// A wrong token fails without the token in the error.
	g.Credentials = func() (Credentials, error) { return Credentials{Token: "wrong-token-value"}, nil }
	_, err = g.Fetch(t.Context(), store.Origin{})
	if err == nil || strings.Contains(err.Error(), "wrong-token-value") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestGitRedirectsNotFollowed(t *testing.T) {
	repo := newTestRepo(t)
	repo.commit(map[string]string{"a": "a"})
	target := gitHTTPServer(t, repo, "")
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		target.Config.Handler.ServeHTTP(w, r)
	}))
	defer other.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer redirector.Close()
	g := newGit(t, redirector.URL+"/"+filepath.Base(repo.dir), "git", true)
	g.Credentials = func() (Credentials, error) { return Credentials{Token: "tok-123456"}, nil }
	if _, err := g.Fetch(t.Context(), store.Origin{}); err == nil {
		t.Fatal("a redirected remote was followed")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests", n)
	}
}
