package datadeployer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNotifyURLAfterSwap(t *testing.T) {
	events := make(chan SwapEvent, 4)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev SwapEvent
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events <- ev
	}))
	defer app.Close()
	h := newHarness(t, func(o *Options) { o.Notify.URL = app.URL + "/reload" })
	v1, v2 := newVersion(t, "v1"), newVersion(t, "v2")
	h.repo.Add(v1.content)
	h.repo.Add(v2.content)
	h.start()
	h.request("models", v1)
	first := <-events
	h.request("models", v2)
	second := <-events
	if first.Deployment != "models" || first.Version != "v1" || first.Digest != v1.digest || first.Previous != "" || first.Path != filepath.Join(h.location, "models") || first.Time.IsZero() {
		t.Fatalf("first event: %+v", first)
	}
	if second.Version != "v2" || second.Previous != v1.digest || second.Source != "models" {
		t.Fatalf("second event: %+v", second)
	}
}

// startSleeper starts a process named name (a copy of sleep) that a
// SIGHUP ends, and returns it with a channel that receives how it ended.
func startSleeper(t *testing.T, name string) (*exec.Cmd, <-chan error) {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("the notify tests need sleep(1): %v", err)
	}
	bin := filepath.Join(t.TempDir(), name)
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended, exited := make(chan error, 1), make(chan struct{})
	go func() {
		ended <- cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return cmd, ended
}

func sighupped(t *testing.T, ended <-chan error) {
	t.Helper()
	select {
	case err := <-ended:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
			t.Fatalf("the app ended with %v, want SIGHUP", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the app got no signal")
	}
}

func TestNotifySignalByPIDFile(t *testing.T) {
	cmd, ended := startSleeper(t, "app")
	pidFile := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *Options) { o.Notify.Signal, o.Notify.PIDFile = "SIGHUP", pidFile })
	v1 := newVersion(t, "v1")
	h.repo.Add(v1.content)
	h.start()
	h.request("models", v1)
	sighupped(t, ended)
}

func TestNotifySignalByProcessName(t *testing.T) {
	name := fmt.Sprintf("acdd%d", os.Getpid()%1_000_000)
	cmd, ended := startSleeper(t, name)
	pids, err := FindProcesses("/proc", name)
	if err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Fatalf("FindProcesses = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
	}
	h := newHarness(t, func(o *Options) { o.Notify.Signal, o.Notify.Process = "HUP", name })
	v1 := newVersion(t, "v1")
	h.repo.Add(v1.content)
	h.start()
	h.request("models", v1)
	sighupped(t, ended)
}

func TestNotifyFailureKeepsVersionLive(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer app.Close()
	h := newHarness(t, func(o *Options) { o.Notify.URL = app.URL })
	v1 := newVersion(t, "v1")
	h.repo.Add(v1.content)
	h.start()
	h.request("models", v1)
	h.waitLive("models", v1)
	eventually(t, "the failed notification to be counted", func() (bool, string) {
		return h.notifications("url", resultError) == 1, ""
	})
}

func TestParseNotifyURL(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:8080/reload": "",
		"http://localhost/reload":      "",
		"http://[::1]:9000/":           "",
		"https://127.0.0.1/":           "--notify-url must use http:// (the app is in the same pod)",
		"http://10.1.2.3/":             `--notify-url host "10.1.2.3" is not 127.0.0.1, localhost or [::1]: only the pod itself may be notified`,
		"http://example.com/":          `--notify-url host "example.com" is not 127.0.0.1`,
		"http://u:p@localhost/":        "--notify-url must not contain credentials",
		"http://localhost:0/":          `--notify-url port "0" must be a number from 1 to 65535`,
		"http://127.0.0.1.nip.io/":     "is not 127.0.0.1",
	}
	for in, wantErr := range tests {
		t.Run(in, func(t *testing.T) {
			_, err := ParseNotifyURL(in)
			if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
				t.Fatalf("ParseNotifyURL(%q) = %v, want %q", in, err, wantErr)
			}
		})
	}
}

func TestNotifyOptionsValidate(t *testing.T) {
	tests := map[string]struct {
		opts    NotifyOptions
		wantErr string
	}{
		"nothing":             {},
		"signal by pid file":  {opts: NotifyOptions{Signal: "SIGUSR1", PIDFile: "/run/app.pid"}},
		"signal by process":   {opts: NotifyOptions{Signal: "usr2", Process: "nginx"}},
		"signal to nobody":    {opts: NotifyOptions{Signal: "SIGHUP"}, wantErr: "--notify-signal needs exactly one of --notify-pid-file and --notify-process"},
		"signal to both":      {opts: NotifyOptions{Signal: "SIGHUP", PIDFile: "/p", Process: "x"}, wantErr: "exactly one of"},
		"target, no signal":   {opts: NotifyOptions{PIDFile: "/p"}, wantErr: "--notify-pid-file and --notify-process need --notify-signal"},
		"signal not allowed":  {opts: NotifyOptions{Signal: "SIGKILL", Process: "x"}, wantErr: `--notify-signal "SIGKILL" is not one of SIGHUP, SIGUSR1, SIGUSR2`},
		"process name a path": {opts: NotifyOptions{Signal: "HUP", Process: "/usr/bin/app"}, wantErr: "must be a process name as in /proc/PID/comm"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.opts.validate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
