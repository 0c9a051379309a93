package framework

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kubectlWaitDelay bounds how long Kubectl waits for kubectl's output pipes
// after the process exited or ctx was cancelled.
const kubectlWaitDelay = 5 * time.Second

// Kubectl runs the assets' kubectl as the admin user with args, feeding it
// stdin (may be nil), and returns its output. ctx cancellation kills kubectl.
// A non-zero exit is an error naming the args and quoting stderr; stdout and
// stderr are returned in every case.
//
// To act as another user, pass --kubeconfig with a path from AddUser in args:
// kubectl honours the last occurrence of a flag.
//
// kubectl's discovery cache lives in the Env's temporary directory rather
// than ~/.kube, so tests neither read nor litter the developer's.
func (e *Env) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	full := append([]string{
		"--kubeconfig=" + e.KubeconfigPath,
		"--cache-dir=" + filepath.Join(e.workDir, "kubectl-cache"),
	}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(e.AssetsDir, kubectlBinary), full...)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &outBuf, &errBuf
	cmd.WaitDelay = kubectlWaitDelay
	runErr := cmd.Run()
	stdout, stderr = outBuf.String(), errBuf.String()
	if runErr != nil {
		return stdout, stderr, fmt.Errorf("kubectl %s: %w; stderr: %s",
			strings.Join(args, " "), runErr, strings.TrimSpace(stderr))
	}
	return stdout, stderr, nil
}
