package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// gitWaitDelay bounds how long a killed git's pipes may stay open.
const gitWaitDelay = 5 * time.Second

// maxGitStderr is how much of git's stderr an error keeps.
const maxGitStderr = 2048

// gitCmd runs git with a clean, hardened environment.
type gitCmd struct {
	git    string
	gitDir string
	home   string
	env    []string
	redact func(string) string
}

// gitConfig is the configuration every git command gets through
// GIT_CONFIG_COUNT, on top of no system and no global configuration.
func gitConfig(allowInsecure bool, authorization string) [][2]string {
	insecure := "never"
	if allowInsecure {
		insecure = "always"
	}
	cfg := [][2]string{
		// Only the transports we mean; ext::, fd:: and helpers stay off.
		{"protocol.allow", "never"},
		{"protocol.https.allow", "always"},
		{"protocol.ssh.allow", "always"},
		{"protocol.file.allow", insecure},
		{"protocol.git.allow", insecure},
		{"protocol.http.allow", insecure},
		// No code from the remote or the repository runs.
		{"core.hooksPath", "/dev/null"},
		{"core.fsmonitor", "false"},
		{"credential.helper", ""},
		{"submodule.recurse", "false"},
		{"fetch.recurseSubmodules", "false"},
		// A redirect could send the request, and a credential, elsewhere.
		{"http.followRedirects", "false"},
		// Refuse malformed objects (".." or ".git" tree entries and such).
		{"transfer.fsckObjects", "true"},
		// Housekeeping stays in the foreground, under our timeout, and drops
		// what older fetches left.
		{"gc.autoDetach", "false"},
		{"maintenance.autoDetach", "false"},
		{"gc.pruneExpire", "now"},
		{"init.defaultBranch", "main"},
		{"advice.detachedHead", "false"},
	}
	if authorization != "" {
		cfg = append(cfg, [2]string{"http.extraHeader", "Authorization: " + authorization})
	}
	return cfg
}

func newGitCmd(gitPath, gitDir, home string, remote GitRemote, allowInsecure bool, creds Credentials) *gitCmd {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + home,
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_LFS_SKIP_SMUDGE=1",
		"GIT_PROTOCOL_FROM_USER=0",
		"GIT_SSH_COMMAND=" + sshCommand(creds),
	}
	cfg := gitConfig(allowInsecure, creds.Authorization())
	env = append(env, "GIT_CONFIG_COUNT="+strconv.Itoa(len(cfg)))
	for i, kv := range cfg {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	shownURL := spec.RedactURL(remote.URL)
	return &gitCmd{
		git: gitPath, gitDir: gitDir, home: home, env: env,
		redact: func(s string) string { return creds.Redact(strings.ReplaceAll(s, remote.URL, shownURL)) },
	}
}

// sshCommand is GIT_SSH_COMMAND: batch mode, no user configuration, the
// source's key and known hosts only. Without known_hosts every host is
// unknown, so ssh refuses to connect.
func sshCommand(c Credentials) string {
	known := "/dev/null"
	if c.KnownHostsFile != "" {
		known = c.KnownHostsFile
	}
	cmd := "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=" + shellQuote(known)
	if c.SSHKeyFile != "" {
		cmd += " -i " + shellQuote(c.SSHKeyFile)
	}
	return cmd
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// command builds a git command in its own process group, so a timeout
// kills git and every helper it started (ssh, remote-https, upload-pack).
func (g *gitCmd) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--git-dir=" + g.gitDir}, args...)
	cmd := exec.CommandContext(ctx, g.git, full...)
	cmd.Env = g.env
	cmd.Dir = g.home
	cmd.WaitDelay = gitWaitDelay
	killProcessGroup(cmd)
	return cmd
}

// run runs git and returns its stdout, at most maxOut bytes of it.
func (g *gitCmd) run(ctx context.Context, maxOut int, args ...string) (string, error) {
	cmd := g.command(ctx, args...)
	stdout := &capBuffer{max: maxOut}
	stderr := &capBuffer{max: maxGitStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if err != nil {
		return "", g.error(ctx, args[0], err, stderr)
	}
	if stdout.over {
		return "", fmt.Errorf("git %s: more than %d bytes of output", args[0], maxOut)
	}
	return stdout.buf.String(), nil
}

// error describes a failed git command without secrets.
func (g *gitCmd) error(ctx context.Context, sub string, err error, stderr *capBuffer) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("git %s: stopped: %w", sub, ctxErr)
	}
	msg := strings.Join(strings.Fields(g.redact(stderr.buf.String())), " ")
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("git %s: %s: %s", sub, exit.ProcessState, msg)
	}
	return fmt.Errorf("git %s: %s", sub, g.redact(err.Error()))
}

// capBuffer keeps the first max bytes written and drops the rest.
type capBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.over = true
		b.buf.Write(p[:max(0, room)])
		return len(p), nil
	}
	return b.buf.Write(p)
}
