package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		"help":         {args: []string{"--help"}, wantCode: 0, wantOut: "-allow-insecure value"},
		"unknown flag": {args: []string{"--nope"}, wantCode: 2, wantOut: "flag provided but not defined"},
		"no sources":   {args: []string{"--root", t.TempDir()}, wantCode: 2, wantOut: "no sources: set --annotations-file, --sources-file or --source"},
		"bad source":   {args: []string{"--source", "m=svn:x"}, wantCode: 2, wantOut: `unknown source kind "svn"`},
		"twice":        {args: []string{"--source", "m=dir:/a", "--source", "m=dir:/b"}, wantCode: 2, wantOut: "--source m is given twice"},
		"extra args":   {args: []string{"serve"}, wantCode: 2, wantOut: "unexpected arguments"},
		"bad keep":     {args: []string{"--source", "m=dir:/a", "--keep", "-1"}, wantCode: 2, wantOut: "--keep must be at least 1"},
		"bad insecure": {args: []string{"--source", "m=dir:/a", "--allow-insecure", "A_B"}, wantCode: 2, wantOut: `--allow-insecure "A_B": not a source name`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(t.Context(), tc.args, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantOut) {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
		})
	}
}
