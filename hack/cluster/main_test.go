package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		"no command":      {nil, 2, "want a command"},
		"unknown command": {[]string{"sideways"}, 2, `unknown command "sideways"`},
		"help":            {[]string{"--help"}, 0, "Usage: hack/cluster-up"},
		"command help":    {[]string{"up", "--help"}, 0, "-work-dir"},
		"stray argument":  {[]string{"down", "now"}, 2, "unexpected arguments"},
		"misspelled flag": {[]string{"up", "--work-dri=/x"}, 2, "flag provided but not defined"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stderr); code != tc.wantCode {
				t.Errorf("exit code %d, want %d; output %s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantOut) {
				t.Errorf("output %q lacks %q", stderr.String(), tc.wantOut)
			}
		})
	}
}

// TestCheckRefusesARecordedCluster: check fails, naming the work directory,
// when a cluster (or its remains) is recorded there, before it looks at
// anything on the host.
func TestCheckRefusesARecordedCluster(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, journalFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run(t.Context(), []string{"check", "--work-dir", dir}, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1; output %s", code, stderr.String())
	}
	if want := "a cluster (or what is left of one) is recorded in " + dir; !strings.Contains(stderr.String(), want) {
		t.Errorf("output %q lacks %q", stderr.String(), want)
	}
}
