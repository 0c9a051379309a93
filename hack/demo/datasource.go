package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/autocrane/autocrane/sidecars/datarepository"
)

// versionFile is the one file of the demo's data, at the root of the git
// repository; a pod's app reads it at LOCATION/SOURCE/versionFile.
const versionFile = "version.txt"

// gitOrigin is the git repository the demo's data comes from: a temporary
// directory, committed to with the git CLI.
type gitOrigin struct {
	dir string
}

// newGitOrigin creates an empty repository on branch main, with a
// committer of its own so that the commands the demo prints work as they
// are. Call remove when done.
func newGitOrigin(ctx context.Context) (*gitOrigin, error) {
	dir, err := os.MkdirTemp("", "autocrane-demo-git-")
	if err != nil {
		return nil, fmt.Errorf("create the git repository: %w", err)
	}
	g := &gitOrigin{dir: dir}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.name", "AutoCrane demo"},
		{"config", "user.email", "demo@autocrane.invalid"},
	} {
		if _, err := g.git(ctx, args...); err != nil {
			return nil, errors.Join(err, g.remove())
		}
	}
	return g, nil
}

// git runs git in the repository, away from the user's and the system's
// git configuration (a commit.gpgsign there would stop the demo).
func (g *gitOrigin) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// commit writes content to versionFile and commits it; it returns the
// commit's short id.
func (g *gitOrigin) commit(ctx context.Context, content string) (string, error) {
	if err := os.WriteFile(filepath.Join(g.dir, versionFile), []byte(content+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", versionFile, err)
	}
	if _, err := g.git(ctx, "add", versionFile); err != nil {
		return "", err
	}
	if _, err := g.git(ctx, "commit", "-q", "-m", "models "+content); err != nil {
		return "", err
	}
	return g.git(ctx, "rev-parse", "--short", "HEAD")
}

func (g *gitOrigin) remove() error { return os.RemoveAll(g.dir) }

// dataRepository is cmd/datarepository running on a free loopback port,
// following one git source.
type dataRepository struct {
	proc   *process
	root   string
	url    string
	args   []string
	client *datarepository.Client
}

// startRepository runs the data repository with source following origin's
// branch main, checked every second, and waits until it is ready. Call
// stop when done.
func startRepository(ctx context.Context, binary, source string, origin *gitOrigin) (*dataRepository, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "autocrane-demo-repository-")
	if err != nil {
		return nil, fmt.Errorf("create the repository's root: %w", err)
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := &dataRepository{
		root: root,
		url:  "http://" + listen,
		// file:// is refused unless the source is named in --allow-insecure.
		args: []string{"--listen=" + listen, "--root=" + root,
			"--source=" + source + "=git:file://" + origin.dir + "#main", "--allow-insecure=" + source,
			"--poll-interval=1s"},
	}
	r.client = &datarepository.Client{BaseURL: r.url, HTTP: &http.Client{Timeout: 5 * time.Second}}
	if r.proc, err = startProcess("datarepository", binary, r.args...); err != nil {
		return nil, errors.Join(err, r.stop())
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		if err := r.proc.exited(); err != nil {
			return false, err
		}
		resp, err := hc.Get(r.url + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("wait for the data repository at %s: %w", r.url, err), r.stop())
	}
	return r, nil
}

// waitVersions waits until source has n versions, and returns it.
func (r *dataRepository) waitVersions(ctx context.Context, source string, n int) (datarepository.SourceStatus, error) {
	var st datarepository.SourceStatus
	err := poll(ctx, 60*time.Second, func() (bool, error) {
		if err := r.proc.exited(); err != nil {
			return false, err
		}
		var err error
		if st, err = r.client.Source(ctx, source); err != nil {
			return false, err
		}
		if len(st.Versions) >= n {
			return true, nil
		}
		return false, fmt.Errorf("%d versions (last error %q), want %d", len(st.Versions), st.LastError, n)
	})
	if err != nil {
		return st, fmt.Errorf("wait for version %d of source %s: %w", n, source, err)
	}
	return st, nil
}

// stop ends the repository and removes its root.
func (r *dataRepository) stop() error {
	var errs []error
	if r.proc != nil {
		errs = append(errs, r.proc.stop())
	}
	return errors.Join(append(errs, os.RemoveAll(r.root))...)
}
