//go:build unix && !linux

package framework

import "syscall"

// sysProcAttr puts a child in its own process group, so that Stop can signal
// it and anything it spawned as one unit without touching the test process's
// group. Unlike on Linux, a child survives a test binary that dies without
// calling Stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
