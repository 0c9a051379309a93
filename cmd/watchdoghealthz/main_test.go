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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/sidecars/watchdoghealthz"
	"github.com/autocrane/autocrane/spec"
)

// TestMain runs the command itself when the test binary is started as a
// child by TestProcess, so the real main (signals, exit code) is tested.
func TestMain(m *testing.M) {
	if os.Getenv("WATCHDOGHEALTHZ_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func dur(s int) *time.Duration { d := time.Duration(s) * time.Second; return &d }

func defaults() watchdoghealthz.Options {
	return watchdoghealthz.Options{
		AnnotationsFile: "/etc/autocrane/podinfo/annotations",
		PollInterval:    5 * time.Second,
		ShutdownTimeout: 5 * time.Second,
	}
}

func TestParseFlags(t *testing.T) {
	with := func(f func(*watchdoghealthz.Options)) watchdoghealthz.Options { o := defaults(); f(&o); return o }
	tests := map[string]struct {
		args       []string
		env        map[string]string
		wantListen string
		wantOpts   watchdoghealthz.Options
		wantErr    string
	}{
		"defaults": {wantListen: ":9781", wantOpts: defaults()},
		"every flag": {
			args: []string{"--annotations-file=/a", "--min-ready-seconds=30", "--always-healthy-after-seconds=600",
				"--listen=127.0.0.1:0", "--poll-interval=1s", "--shutdown-timeout=2s"},
			wantListen: "127.0.0.1:0",
			wantOpts: watchdoghealthz.Options{AnnotationsFile: "/a", PollInterval: time.Second, ShutdownTimeout: 2 * time.Second,
				Config: watchdoghealthz.Config{MinReady: 30 * time.Second, AlwaysHealthyAfter: dur(600)}},
		},
		"environment": {
			env: map[string]string{"WATCHDOGHEALTHZ_MIN_READY_SECONDS": "10", "WATCHDOGHEALTHZ_ALWAYS_HEALTHY_AFTER_SECONDS": "10",
				"WATCHDOGHEALTHZ_POLL_INTERVAL": "100ms", "WATCHDOGHEALTHZ_LISTEN": ":1234"},
			wantListen: ":1234",
			wantOpts: with(func(o *watchdoghealthz.Options) {
				o.Config = watchdoghealthz.Config{MinReady: 10 * time.Second, AlwaysHealthyAfter: dur(10)}
				o.PollInterval = 100 * time.Millisecond
			}),
		},
		"the flag beats the variable": {
			args: []string{"--min-ready-seconds=5"}, env: map[string]string{"WATCHDOGHEALTHZ_MIN_READY_SECONDS": "x"},
			wantErr: `$WATCHDOGHEALTHZ_MIN_READY_SECONDS="x": not a whole number`,
		},
		"always-healthy-after 0 with min-ready 0": {args: []string{"--always-healthy-after-seconds=0"}, wantListen: ":9781",
			wantOpts: with(func(o *watchdoghealthz.Options) { o.Config.AlwaysHealthyAfter = dur(0) })},
		"min-ready too long":  {args: []string{"--min-ready-seconds=86401"}, wantErr: "--min-ready-seconds=86401: must be whole seconds from 0 to 86400"},
		"min-ready negative":  {args: []string{"--min-ready-seconds=-1"}, wantErr: "--min-ready-seconds=-1: must be whole seconds from 0 to 86400"},
		"min-ready as a time": {args: []string{"--min-ready-seconds=30s"}, wantErr: `invalid value "30s" for flag -min-ready-seconds: parse error`},
		"always-healthy bad": {args: []string{"--always-healthy-after-seconds=1h"},
			wantErr: `invalid value "1h" for flag -always-healthy-after-seconds: must be whole seconds from 0 to 86400`},
		"always-healthy bad in the environment": {env: map[string]string{"WATCHDOGHEALTHZ_ALWAYS_HEALTHY_AFTER_SECONDS": ""},
			wantErr: `$WATCHDOGHEALTHZ_ALWAYS_HEALTHY_AFTER_SECONDS="": must be whole seconds from 0 to 86400`},
		"always-healthy less than min-ready": {args: []string{"--min-ready-seconds=60", "--always-healthy-after-seconds=30"},
			wantErr: "--always-healthy-after-seconds=30: must not be less than --min-ready-seconds (60), or the canary would never gate"},
		"empty file":          {args: []string{"--annotations-file="}, wantErr: "--annotations-file: must not be empty"},
		"poll too fast":       {args: []string{"--poll-interval=1ms"}, wantErr: "--poll-interval=1ms: must be from 10ms to 1h0m0s"},
		"zero shutdown":       {args: []string{"--shutdown-timeout=0s"}, wantErr: "--shutdown-timeout=0s: must be more than 0s"},
		"listen without port": {args: []string{"--listen=9781"}, wantErr: `--listen="9781": want HOST:PORT or :PORT: address 9781: missing port in address`},
		"several errors at once": {args: []string{"--min-ready-seconds=-1", "--poll-interval=2h"},
			wantErr: "--min-ready-seconds=-1: must be whole seconds from 0 to 86400\n--poll-interval=2h0m0s: must be from 10ms to 1h0m0s"},
		"unknown flag":        {args: []string{"--min-ready=3"}, wantErr: "flag provided but not defined: -min-ready"},
		"positional argument": {args: []string{"x"}, wantErr: `unexpected arguments ["x"]: watchdoghealthz takes only flags`},
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
			if diff := cmp.Diff(tc.wantOpts, cfg.opts, cmpopts.IgnoreFields(watchdoghealthz.Options{}, "Log")); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInjectorArguments parses the arguments the injector gives the
// container, so that the two cannot drift apart.
func TestInjectorArguments(t *testing.T) {
	if watchdoghealthz.DefaultAnnotationsFile != injector.AnnotationsFile {
		t.Errorf("default --annotations-file %q, the injector mounts %q", watchdoghealthz.DefaultAnnotationsFile, injector.AnnotationsFile)
	}
	if want := ":" + strconv.Itoa(injector.DefaultWatchdogHealthzPort); defaultListen != want {
		t.Errorf("default --listen %q, the injector's default port gives %q", defaultListen, want)
	}
	tests := map[string]struct {
		healthz  spec.Healthz
		wantOpts watchdoghealthz.Options
	}{
		"min-ready only": {healthz: spec.Healthz{MinReadySeconds: 30},
			wantOpts: watchdoghealthz.Options{AnnotationsFile: injector.AnnotationsFile, PollInterval: 5 * time.Second, ShutdownTimeout: 5 * time.Second,
				Config: watchdoghealthz.Config{MinReady: 30 * time.Second}}},
		"with always-healthy-after": {healthz: spec.Healthz{MinReadySeconds: 0, AlwaysHealthyAfterSeconds: ptr.To[int32](600)},
			wantOpts: watchdoghealthz.Options{AnnotationsFile: injector.AnnotationsFile, PollInterval: 5 * time.Second, ShutdownTimeout: 5 * time.Second,
				Config: watchdoghealthz.Config{AlwaysHealthyAfter: dur(600)}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
			out, err := injector.Inject(in, spec.Pod{Healthz: &tc.healthz}, injector.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var c *corev1.Container
			for i := range out.Spec.Containers {
				if out.Spec.Containers[i].Name == injector.ContainerWatchdogHealthz {
					c = &out.Spec.Containers[i]
				}
			}
			if c == nil {
				t.Fatalf("the injector added no %s container", injector.ContainerWatchdogHealthz)
			}
			cfg, err := parseFlags(c.Args, env(nil))
			if err != nil {
				t.Fatalf("the injector's arguments %q: %v", c.Args, err)
			}
			if diff := cmp.Diff(tc.wantOpts, cfg.opts, cmpopts.IgnoreFields(watchdoghealthz.Options{}, "Log")); diff != "" {
				t.Errorf("options from %q (-want +got):\n%s", c.Args, diff)
			}
			if cfg.listen != defaultListen {
				t.Errorf("listen = %q, want %q", cfg.listen, defaultListen)
			}
			if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.IntValue() != injector.DefaultWatchdogHealthzPort {
				t.Errorf("readiness probe %+v does not GET /healthz on the sidecar's port", p)
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
		"help": {args: []string{"--help"}, wantCode: 0, wantStdout: manual()},
		"usage error": {args: []string{"--min-ready-seconds=100000"}, wantCode: 2,
			wantStderr: "watchdoghealthz: --min-ready-seconds=100000: must be whole seconds from 0 to 86400\nRun \"watchdoghealthz --help\" for the flags.\n"},
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
	var minReady int
	var always *int
	fs, _ := newFlags(&cfg, &minReady, &always, env(nil))
	man := manual()
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "zap-") {
			if !strings.Contains(man, "\n    --"+f.Name) {
				t.Errorf("the manual does not document --%s", f.Name)
			}
			return
		}
		re := regexp.MustCompile(`\n    --` + regexp.QuoteMeta(f.Name) + ` <[a-z]+>,\s+\$` + envName(f.Name) + `\n`)
		if !re.MatchString(man) {
			t.Errorf("the manual lacks the entry \"--%s <value>, $%s\"", f.Name, envName(f.Name))
		}
	})
	for _, line := range strings.Split(man, "\n") {
		if len(line) > 80 {
			t.Errorf("manual line longer than 80 columns: %q", line)
		}
	}
}

// TestProcess runs the real command as a child process on a free loopback
// port against an annotations file written like the kubelet does, then
// stops it with SIGTERM and checks that it exits 0.
func TestProcess(t *testing.T) {
	dir := t.TempDir()
	write := func(a map[string]string) {
		t.Helper()
		if err := podinfo.WriteLikeKubelet(dir, "annotations", a); err != nil {
			t.Fatal(err)
		}
	}
	write(map[string]string{spec.KeyMinReadySeconds: "0"})
	cmd := exec.CommandContext(t.Context(), os.Args[0], "--listen=127.0.0.1:0", "--min-ready-seconds=0",
		"--annotations-file="+filepath.Join(dir, "annotations"), "--poll-interval=50ms")
	cmd.Env = append(os.Environ(), "WATCHDOGHEALTHZ_TEST_RUN_MAIN=1")
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
	// Drain the logs so the child never blocks on a full pipe.
	rest := make(chan string, 1)
	go func() {
		var b strings.Builder
		for logs.Scan() {
			b.WriteString(logs.Text() + "\n")
		}
		rest <- b.String()
	}()

	waitFor(t, "http://"+addr+"/healthz", 200, `{"healthy":true,"reason":"error-free for `)
	write(map[string]string{spec.PrefixWatchdogStatus + "alive": "error/2030-01-02T03:04:05Z/down"})
	waitFor(t, "http://"+addr+"/healthz", 503, `{"healthy":false,"reason":"watchdog alive is error since 2030-01-02T03:04:05Z: down"}`)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	logged := <-rest
	if err != nil {
		t.Fatalf("after SIGTERM: %v; logs:\n%s", err, logged)
	}
	if !strings.Contains(logged, `"msg":"shutting down"`) || !strings.Contains(logged, `"msg":"stopped"`) {
		t.Errorf("the logs after SIGTERM lack the shutdown lines:\n%s", logged)
	}
}

// waitFor polls url until it answers code and a body that starts with
// prefix (errorFreeFor grows with the real clock), with a generous deadline.
func waitFor(t *testing.T, url string, code int, prefix string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var gotCode int
	var gotBody string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		gotCode, gotBody = resp.StatusCode, string(b)
		if gotCode == code && strings.HasPrefix(gotBody, prefix) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("GET %s = %d %q; want %d %q...", url, gotCode, gotBody, code, prefix)
}
