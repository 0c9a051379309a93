//go:build unix

package fetch

import (
	"os/exec"
	"syscall"
)

// killProcessGroup starts cmd in a new process group and makes its context
// cancellation kill the whole group, helpers included.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
