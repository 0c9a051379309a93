package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/autocrane/autocrane/sidecars/testworkload"
)

// TestMain runs the command itself when the test binary is started as a
// child by TestProcess, so the real main (signals, exit code) is tested.
func TestMain(m *testing.M) {
	if os.Getenv("TESTWORKLOAD_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseFlags(t *testing.T) {
	tests := map[string]struct {
		args       []string
		env        map[string]string
		wantListen string
		wantOpts   testworkload.Options
		wantErr    string
	}{
		"defaults": {wantListen: ":8080", wantOpts: testworkload.Options{ShutdownTimeout: 10 * time.Second}},
		"every flag": {
			args:       []string{"--listen=127.0.0.1:9000", "--redirect-watchdog-to=http://127.0.0.1:1/x", "--shutdown-timeout=3s"},
			wantListen: "127.0.0.1:9000",
			wantOpts:   testworkload.Options{RedirectWatchdogTo: "http://127.0.0.1:1/x", ShutdownTimeout: 3 * time.Second},
		},
		"environment": {
			env:        map[string]string{"TESTWORKLOAD_LISTEN": ":9001", "TESTWORKLOAD_WATCHDOG_BODY_BYTES": "1048576", "TESTWORKLOAD_SHUTDOWN_TIMEOUT": "1m"},
			wantListen: ":9001",
			wantOpts:   testworkload.Options{WatchdogBodyBytes: 1 << 20, ShutdownTimeout: time.Minute},
		},
		"PORT when nothing else says": {env: map[string]string{"PORT": "3000"}, wantListen: ":3000",
			wantOpts: testworkload.Options{ShutdownTimeout: 10 * time.Second}},
		"the variable beats PORT": {env: map[string]string{"PORT": "3000", "TESTWORKLOAD_LISTEN": ":4000"}, wantListen: ":4000",
			wantOpts: testworkload.Options{ShutdownTimeout: 10 * time.Second}},
		"the flag beats PORT, even a bad one": {args: []string{"--listen=:5000"}, env: map[string]string{"PORT": "x"}, wantListen: ":5000",
			wantOpts: testworkload.Options{ShutdownTimeout: 10 * time.Second}},
		"the flag beats the variable": {args: []string{"--watchdog-body-bytes=7"}, env: map[string]string{"TESTWORKLOAD_WATCHDOG_BODY_BYTES": "9"},
			wantListen: ":8080", wantOpts: testworkload.Options{WatchdogBodyBytes: 7, ShutdownTimeout: 10 * time.Second}},
		"bad PORT":            {env: map[string]string{"PORT": "http"}, wantErr: `$PORT="http": want a port number from 1 to 65535`},
		"PORT zero":           {env: map[string]string{"PORT": "0"}, wantErr: `$PORT="0": want a port number from 1 to 65535`},
		"bad variable":        {env: map[string]string{"TESTWORKLOAD_WATCHDOG_BODY_BYTES": "1MB"}, wantErr: `$TESTWORKLOAD_WATCHDOG_BODY_BYTES="1MB": not a whole number`},
		"bad duration var":    {env: map[string]string{"TESTWORKLOAD_SHUTDOWN_TIMEOUT": "10"}, wantErr: `$TESTWORKLOAD_SHUTDOWN_TIMEOUT="10": not a duration such as 30s or 5m`},
		"unknown flag":        {args: []string{"--listn=:1"}, wantErr: "flag provided but not defined: -listn"},
		"positional argument": {args: []string{"serve"}, wantErr: `unexpected arguments ["serve"]: testworkload takes only flags`},
		"listen without port": {args: []string{"--listen=localhost"}, wantErr: `--listen="localhost": want HOST:PORT or :PORT: address localhost: missing port in address`},
		"listen bad port":     {args: []string{"--listen=:http"}, wantErr: `--listen=":http": the port must be a number from 0 to 65535`},
		"zero shutdown":       {args: []string{"--shutdown-timeout=0s"}, wantErr: "--shutdown-timeout=0s: must be more than 0s"},
		"both test modes": {args: []string{"--redirect-watchdog-to=http://h/", "--watchdog-body-bytes=5"},
			wantErr: "--redirect-watchdog-to, --watchdog-body-bytes: a redirect target and a watchdog body size exclude each other: a redirect has no watchdog body"},
		"relative redirect": {args: []string{"--redirect-watchdog-to=/x"},
			wantErr: `--redirect-watchdog-to, --watchdog-body-bytes: redirect target "/x": want an absolute http:// or https:// URL`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, env(tc.env))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("parseFlags = %v, want error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.listen != tc.wantListen {
				t.Errorf("listen = %q, want %q", cfg.listen, tc.wantListen)
			}
			if diff := cmp.Diff(tc.wantOpts, cfg.opts, cmpopts.IgnoreFields(testworkload.Options{}, "Log")); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		"help":       {args: []string{"--help"}, wantCode: 0, wantStdout: manual()},
		"short help": {args: []string{"-h"}, wantCode: 0, wantStdout: manual()},
		"usage error": {args: []string{"--watchdog-body-bytes=-1"}, wantCode: 2,
			wantStderr: "testworkload: --redirect-watchdog-to, --watchdog-body-bytes: watchdog body bytes -1: must not be negative\nRun \"testworkload --help\" for the flags.\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, env(nil), &stdout, &stderr)
			if code != tc.wantCode || stdout.String() != tc.wantStdout || stderr.String() != tc.wantStderr {
				t.Fatalf("run = %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout.String(), stderr.String(), tc.wantCode, tc.wantStdout, tc.wantStderr)
			}
		})
	}
}

// TestManualNamesEveryFlag keeps the hand-written manual complete.
func TestManualNamesEveryFlag(t *testing.T) {
	var cfg config
	fs, e := newFlags(&cfg, env(nil))
	man := manual()
	fs.VisitAll(func(f *flag.Flag) {
		want := "--" + f.Name
		if v, ok := e.EnvName(f.Name); ok {
			want = regexp.MustCompile(`--` + regexp.QuoteMeta(f.Name) + ` <[a-z]+>, \$` + v + `\n`).FindString(man)
			if want == "" {
				t.Errorf("the manual lacks a line \"--%s <value>, $%s\"", f.Name, v)
				return
			}
		}
		if !strings.Contains(man, "\n    "+want) {
			t.Errorf("the manual does not document %s", want)
		}
	})
	for _, line := range strings.Split(man, "\n") {
		if len(line) > 80 {
			t.Errorf("manual line longer than 80 columns: %q", line)
		}
	}
}

// TestProcess runs the real command as a child process on a free loopback
// port, talks to it, stops it with SIGTERM and checks it exits 0.
//
// It serves files as a datadeployer lays them out: "models" a symbolic
// link to the version's directory. A link out of the directory is not
// followed.
func TestProcess(t *testing.T) {
	files, outside := t.TempDir(), t.TempDir()
	must(t, os.Mkdir(filepath.Join(files, "v1"), 0o755))
	must(t, os.WriteFile(filepath.Join(files, "v1", "version.txt"), []byte("v1\n"), 0o644))
	must(t, os.Symlink("v1", filepath.Join(files, "models")))
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("no"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(files, "escape")))
	cmd := exec.CommandContext(t.Context(), os.Args[0], "--listen=127.0.0.1:0", "--serve-files="+files)
	cmd.Env = append(os.Environ(), "TESTWORKLOAD_TEST_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	logs := bufio.NewScanner(stderr)
	addr := ""
	var lines []string
	for addr == "" && logs.Scan() {
		lines = append(lines, logs.Text())
		var entry struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
		}
		if json.Unmarshal(logs.Bytes(), &entry) == nil && entry.Msg == "serving" {
			addr = entry.Address
		}
	}
	if addr == "" {
		t.Fatalf("no \"serving\" log line; logs:\n%s", strings.Join(lines, "\n"))
	}
	for path, want := range map[string]string{
		"/ping":                     "pong",
		"/watchdog":                 `{"level":"info","message":"ok"}` + "\n",
		"/files/models/version.txt": "v1\n",
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Errorf("GET %s = %d %q, want 200 %q", path, resp.StatusCode, b, want)
		}
	}
	for _, path := range []string{"/files/escape/secret", "/files/../secret"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("GET %s = 200 %q: a file outside --serve-files was served", path, b)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; logs:\n%s", err, rest)
	}
	if !strings.Contains(string(rest), `"msg":"shutting down"`) || !strings.Contains(string(rest), `"msg":"stopped"`) {
		t.Errorf("the logs after SIGTERM lack the shutdown lines:\n%s", rest)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
