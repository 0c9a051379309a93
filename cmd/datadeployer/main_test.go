package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/sidecars/datadeployer/repotest"
	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

// TestMain lets a test run this test binary as the datadeployer process.
func TestMain(m *testing.M) {
	if os.Getenv("DATADEPLOYER_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestRunUsage(t *testing.T) {
	tests := map[string]struct {
		args       []string
		env        map[string]string
		wantCode   int
		wantStderr string
	}{
		"help":             {args: []string{"--help"}, wantCode: 0, wantStderr: "Usage: datadeployer [flags]"},
		"bad flag":         {args: []string{"--nope"}, wantCode: 2, wantStderr: "flag provided but not defined: -nope"},
		"stray argument":   {args: []string{"--deployments=a", "extra"}, wantCode: 2, wantStderr: `unexpected arguments ["extra"]`},
		"bad mode":         {args: []string{"--mode=daemon", "--deployments=a"}, wantCode: 2, wantStderr: `--mode "daemon" is not one of init, sidecar, native-sidecar`},
		"no deployments":   {args: []string{"--mode=init"}, wantCode: 2, wantStderr: "--deployments is empty"},
		"bad deployment":   {args: []string{"--deployments=Models"}, wantCode: 2, wantStderr: `--deployments: "Models" is not a DNS-1123 label`},
		"bad size":         {args: []string{"--deployments=a", "--max-bytes=lots"}, wantCode: 2, wantStderr: `"lots" is not a size such as 4Gi or 500Mi`},
		"bad env":          {env: map[string]string{"DATADEPLOYER_INIT_TIMEOUT": "soon"}, wantCode: 2, wantStderr: `$DATADEPLOYER_INIT_TIMEOUT="soon": not a duration such as 30s or 5m`},
		"no repository":    {args: []string{"--deployments=a", "--location=" + os.TempDir()}, wantCode: 2, wantStderr: "invalid options: --repository-url:"},
		"notify off pod":   {args: []string{"--deployments=a", "--repository-url=http://repo", "--location=" + os.TempDir(), "--notify-url=http://example.com/"}, wantCode: 2, wantStderr: `--notify-url host "example.com"`},
		"missing location": {args: []string{"--deployments=a", "--repository-url=http://repo", "--location=/nonexistent/data", "--listen="}, wantCode: 1, wantStderr: "open --location:"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stderr); code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

// TestInitProcess runs the datadeployer as a process in init mode, as the
// injected init container does: exit 0 with the data in place, or exit 1
// with a message naming what it waited for.
func TestInitProcess(t *testing.T) {
	repo := repotest.New(t)
	content := repotest.Tar(t, map[string]string{"weights.bin": "v1"})
	digest := repo.Add(content)
	tests := map[string]struct {
		annotations map[string]string
		wantCode    int
		wantStderr  string
	}{
		"data there": {
			annotations: map[string]string{spec.PrefixDataRequest + "models": "models/v1/" + digest},
			wantCode:    0,
		},
		"no request": {
			annotations: map[string]string{},
			wantCode:    1,
			wantStderr:  "datadeployer: data not ready: deployment models: waited 500ms for the annotation request.data.autocrane.io/models",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			podDir, location := t.TempDir(), t.TempDir()
			if err := podinfo.WriteLikeKubelet(podDir, "annotations", tc.annotations); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"--mode=init", "--repository-url="+repo.URL, "--location="+location, "--deployments=models",
				"--annotations-file="+filepath.Join(podDir, "annotations"), "--listen=", "--init-timeout=500ms")
			cmd.Env = append(os.Environ(), "DATADEPLOYER_TEST_RUN_MAIN=1")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Fatalf("exit code %d, want %d; stderr:\n%s\nwant it to contain %q", code, tc.wantCode, stderr.String(), tc.wantStderr)
			}
			if code == 0 {
				b, err := os.ReadFile(filepath.Join(location, "models", "weights.bin"))
				if err != nil || string(b) != "v1" {
					t.Fatalf("data: %q %v", b, err)
				}
			}
		})
	}
}
