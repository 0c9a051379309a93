package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: pause (no arguments); waits for SIGTERM or SIGINT, then exits 0")
		os.Exit(2)
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	os.Exit(waitForStop(signals, reapChildren))
}

// waitForStop reaps on every SIGCHLD and returns exit code 0 at the first
// other signal (SIGTERM or SIGINT), or when signals is closed.
func waitForStop(signals <-chan os.Signal, reap func()) int {
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		return 0
	}
	return 0
}

// reapChildren collects every exited child, so that processes orphaned in a
// shared PID namespace (where pause is PID 1) do not stay zombies.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
