package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// startDaemon starts a long-running component in its own session (so a
// Ctrl-C at the terminal reaches only this tool, which then tears down in
// order), with its output in logs/NAME.log, and records it in the journal.
func startDaemon(log logr.Logger, j *journal, name string, env []string, argv ...string) error {
	logPath := filepath.Join(j.Config.WorkDir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("creating the log directory: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the log of %s: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = j.Config.WorkDir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	log.Info("starting", "component", name, "log", logPath)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	start, err := processStartTime(pid)
	if err != nil {
		return fmt.Errorf("reading the start time of %s: %w", name, err)
	}
	// The daemon outlives this tool; Release drops our handle (and sets
	// cmd.Process.Pid to -1) without waiting; the init process reaps it.
	if err := cmd.Process.Release(); err != nil {
		return fmt.Errorf("releasing %s: %w", name, err)
	}
	return j.addProcess(process{Name: name, PID: pid, StartTime: start})
}

// processStartTime reads field 22 of /proc/PID/stat: the start time in
// clock ticks after boot.
func processStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatStartTime(string(b))
}

// parseStatStartTime parses a /proc/PID/stat line. The command name (field
// 2) is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStatStartTime(stat string) (uint64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errors.New("malformed /proc stat: no command name")
	}
	fields := strings.Fields(stat[end+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, errors.New("malformed /proc stat: too few fields")
	}
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc stat start time: %w", err)
	}
	return v, nil
}

// alive tells whether p still runs as the process that was started (and
// not a zombie).
func alive(p process) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	start, err := parseStatStartTime(string(b))
	if err != nil || start != p.StartTime {
		return false
	}
	end := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b)[end+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// stopProcess sends SIGTERM to a recorded daemon, waits up to grace, then
// sends SIGKILL. It is a no-op when the process is already gone; it never
// signals a PID that now belongs to another process.
func stopProcess(ctx context.Context, log logr.Logger, p process, grace time.Duration) error {
	if !alive(p) {
		return nil
	}
	log.Info("stopping", "component", p.Name, "pid", p.PID)
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", p.Name, p.PID, err)
	}
	if waitGone(ctx, p, grace) {
		return nil
	}
	log.Info("killing", "component", p.Name, "pid", p.PID)
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s (pid %d): %w", p.Name, p.PID, err)
	}
	if !waitGone(ctx, p, 10*time.Second) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return nil
}

func waitGone(ctx context.Context, p process, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(p) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
