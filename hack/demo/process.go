package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/autocrane/autocrane/test/envtest/framework"
)

// stopGrace is how long a stopped process gets between SIGTERM and
// SIGKILL, like a pod's termination grace period.
const stopGrace = 5 * time.Second

// tailSize is how much of a process's output is kept for error messages.
const tailSize = 8 << 10

// process is a program the demo runs in the background: a pod's container
// or the data repository. The end of its output is kept, so that an error
// can say why it failed.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	out  *framework.TailBuffer
}

// startProcess starts binary. Not exec.CommandContext: stop ends the
// process, with a grace period, also when a context is already cancelled
// (Ctrl-C).
func startProcess(name, binary string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(binary, args...), done: make(chan struct{}), out: &framework.TailBuffer{Max: tailSize}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited is an error saying how the process ended, or nil while it runs.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s; its last output:\n%s", p.name, p.cmd.ProcessState, p.out)
	default:
		return nil
	}
}

// stop ends the process: SIGTERM, then SIGKILL after stopGrace.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-p.done
	return nil
}
