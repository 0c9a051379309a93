package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	tests := map[string]struct {
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"no command":            {args: nil, wantCode: 2, wantStderr: "Usage:"},
		"unknown command":       {args: []string{"deploy"}, wantCode: 2, wantStderr: `unknown command "deploy"`},
		"help":                  {args: []string{"help"}, wantCode: 0, wantStdout: "autocrane inject -f FILE|-"},
		"version":               {args: []string{"version"}, wantCode: 0, wantStdout: "dev"},
		"manager help":          {args: []string{"help", "manager"}, wantCode: 0, wantStderr: "-webhook-port int"},
		"manager bad flag":      {args: []string{"manager", "--no-such-flag"}, wantCode: 2, wantStderr: "flag provided but not defined: -no-such-flag"},
		"manager stray args":    {args: []string{"manager", "extra"}, wantCode: 2, wantStderr: `unexpected arguments ["extra"]`},
		"manager bad env":       {args: []string{"manager"}, env: map[string]string{"AUTOCRANE_WEBHOOK_PORT": "lots"}, wantCode: 2, wantStderr: `$AUTOCRANE_WEBHOOK_PORT="lots": not a whole number`},
		"manager bad env bool":  {args: []string{"manager"}, env: map[string]string{"AUTOCRANE_LEADER_ELECT": "maybe"}, wantCode: 2, wantStderr: `$AUTOCRANE_LEADER_ELECT="maybe": not true or false`},
		"inject bad flag":       {args: []string{"inject", "--nope"}, wantCode: 2, wantStderr: "-nope"},
		"inject needs a file":   {args: []string{"inject"}, wantCode: 2},
		"manager no kubeconfig": {args: []string{"manager", "--kubeconfig=/nonexistent/kubeconfig"}, wantCode: 1, wantStderr: "load kubeconfig"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}
