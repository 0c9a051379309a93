package framework

import "syscall"

// sysProcAttr puts a child in its own process group, so that Stop can signal
// it and anything it spawned as one unit without touching the test process's
// group, and has the kernel kill it if the test binary dies without calling
// Stop (a test timeout panic, or SIGKILL): an orphaned controller manager
// would otherwise keep running. Pdeathsig fires when the thread that started
// the child exits; Go only retires threads whose goroutine exited while
// locked to them, which test code does not normally do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}
