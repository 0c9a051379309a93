package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestDoctorDocIsGenerated keeps docs/doctor.md in step with the flags.
func TestDoctorDocIsGenerated(t *testing.T) {
	var help bytes.Buffer
	fs, _, _ := newDoctorFlags(&help)
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			t.Fatalf("unset %s=%s: it changes the documented default of --%s", envName(f.Name), v, f.Name)
		}
	})
	fs.Usage()
	gendoc.Check(t, "../../docs/doctor.md", "<!-- BEGIN GENERATED: autocrane doctor --help -->\n", "```text\n"+help.String()+"```\n")
}

// TestDoctorCommandLine covers what the doctor decides before it talks to
// a cluster: usage errors exit 2, help exits 0, and an unreachable cluster
// is a plain failure (exit 1).
func TestDoctorCommandLine(t *testing.T) {
	// A kubeconfig naming a server nothing listens on: port 1 of loopback
	// refuses at once.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStderr string
	}{
		"help":                 {args: []string{"doctor", "--help"}, wantCode: 0, wantStderr: "Usage: autocrane doctor"},
		"unknown flag":         {args: []string{"doctor", "--nope"}, wantCode: 2, wantStderr: "flag provided but not defined"},
		"bad output format":    {args: []string{"doctor", "-o", "yaml"}, wantCode: 2, wantStderr: `-o "yaml": must be text or json`},
		"bad cert mode":        {args: []string{"doctor", "--kubeconfig", kubeconfig, "--cert-mode", "vault"}, wantCode: 2, wantStderr: `--cert-mode "vault"`},
		"stray argument":       {args: []string{"doctor", "now"}, wantCode: 2, wantStderr: "unexpected arguments"},
		"unreachable cluster":  {args: []string{"doctor", "--kubeconfig", kubeconfig}, wantCode: 1, wantStderr: "cannot reach the API server at https://127.0.0.1:1"},
		"help through help":    {args: []string{"help", "doctor"}, wantCode: 0, wantStderr: "--probe-namespace"},
		"missing kubeconfig":   {args: []string{"doctor", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, wantCode: 1, wantStderr: "load kubeconfig"},
		"bad timeout from env": {args: []string{"doctor"}, wantCode: 2, wantStderr: "AUTOCRANE_TIMEOUT"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if name == "bad timeout from env" {
				t.Setenv("AUTOCRANE_TIMEOUT", "soon")
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.wantCode {
				t.Fatalf("exit code = %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}
