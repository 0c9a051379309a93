package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWaitForStop(t *testing.T) {
	tests := map[string]struct {
		signals   []os.Signal
		wantReaps int
	}{
		"SIGTERM":                 {signals: []os.Signal{syscall.SIGTERM}},
		"SIGINT":                  {signals: []os.Signal{syscall.SIGINT}},
		"children, then SIGTERM":  {signals: []os.Signal{syscall.SIGCHLD, syscall.SIGCHLD, syscall.SIGTERM}, wantReaps: 2},
		"stops at the first stop": {signals: []os.Signal{syscall.SIGTERM, syscall.SIGCHLD}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ch := make(chan os.Signal, len(tc.signals))
			for _, s := range tc.signals {
				ch <- s
			}
			reaps := 0
			if code := waitForStop(ch, func() { reaps++ }); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if reaps != tc.wantReaps {
				t.Errorf("reaped %d times, want %d", reaps, tc.wantReaps)
			}
		})
	}
}

// TestReapChildren checks that an exited child is collected (no zombie).
func TestReapChildren(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Nobody waits for it, so once it exits it stays a zombie.
	deadline := time.Now().Add(30 * time.Second)
	for !isZombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not become a zombie", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	reapChildren()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("child %d still exists after reaping: %v", pid, err)
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	return end > 0 && strings.HasPrefix(strings.TrimSpace(s[end+1:]), "Z")
}

func TestRefusesArguments(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	err := exec.Command(bin, "extra").Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("with an argument: %v, want exit code 2", err)
	}
}
