package datadeployer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SwapEvent is the JSON body POSTed to --notify-url after a swap.
type SwapEvent struct {
	// Deployment is the data deployment's name; Path is LOCATION/NAME.
	Deployment string `json:"deployment"`
	Path       string `json:"path"`
	// Source, Version and Digest are the version now live.
	Source  string `json:"source,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest"`
	// Previous is the digest that was live before, if any.
	Previous string    `json:"previous,omitempty"`
	Time     time.Time `json:"time"`
}

// ParseNotifyURL checks --notify-url: http:// to the pod itself only
// (127.0.0.1, localhost or [::1]), since the app shares the pod's network
// namespace and nothing else should be reachable from this hook.
func ParseNotifyURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("--notify-url: not a URL: %w", err)
	}
	host := u.Hostname()
	switch {
	case u.Scheme != "http":
		return nil, errors.New("--notify-url must use http:// (the app is in the same pod)")
	case u.User != nil:
		return nil, errors.New("--notify-url must not contain credentials")
	case host != "127.0.0.1" && host != "localhost" && host != "::1":
		return nil, fmt.Errorf("--notify-url host %q is not 127.0.0.1, localhost or [::1]: only the pod itself may be notified", host)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("--notify-url port %q must be a number from 1 to 65535", p)
		}
	}
	return u, nil
}

// ParseSignal parses --notify-signal: HUP, USR1 or USR2, with or without SIG.
func ParseSignal(v string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(v), "SIG") {
	case "HUP":
		return syscall.SIGHUP, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	}
	return 0, fmt.Errorf("--notify-signal %q is not one of SIGHUP, SIGUSR1, SIGUSR2", v)
}

func (n NotifyOptions) validate() error {
	var errs []error
	if n.URL != "" {
		if _, err := ParseNotifyURL(n.URL); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case n.Signal == "" && (n.PIDFile != "" || n.Process != ""):
		errs = append(errs, errors.New("--notify-pid-file and --notify-process need --notify-signal"))
	case n.Signal != "" && (n.PIDFile == "") == (n.Process == ""):
		errs = append(errs, errors.New("--notify-signal needs exactly one of --notify-pid-file and --notify-process"))
	}
	if n.Signal != "" {
		if _, err := ParseSignal(n.Signal); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Process != "" && (strings.ContainsRune(n.Process, '/') || len(n.Process) > 15) {
		errs = append(errs, fmt.Errorf("--notify-process %q must be a process name as in /proc/PID/comm (at most 15 bytes, no /)", n.Process))
	}
	return errors.Join(errs...)
}

// notifier tells the app about swaps.
type notifier struct {
	opts   NotifyOptions
	client *http.Client
}

func newNotifier(o NotifyOptions) *notifier {
	return &notifier{opts: o, client: &http.Client{
		Timeout: o.Timeout,
		// The app answers on the pod's own address; never follow it elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: o.Timeout}).DialContext},
	}}
}

// kinds lists the configured notification kinds, for metrics.
func (n *notifier) kinds() []string {
	var k []string
	if n.opts.URL != "" {
		k = append(k, "url")
	}
	if n.opts.Signal != "" {
		k = append(k, "signal")
	}
	return k
}

// post sends ev to the notify URL.
func (n *notifier) post(ctx context.Context, ev SwapEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.opts.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.opts.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.opts.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("notify %s: the app answered %d", n.opts.URL, resp.StatusCode)
	}
	return nil
}

// signal sends the configured signal to the app's process(es).
func (n *notifier) signal() error {
	sig, err := ParseSignal(n.opts.Signal)
	if err != nil {
		return err
	}
	var pids []int
	if n.opts.PIDFile != "" {
		pid, err := readPIDFile(n.opts.PIDFile)
		if err != nil {
			return err
		}
		pids = []int{pid}
	} else {
		pids, err = FindProcesses(n.opts.ProcDir, n.opts.Process)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return fmt.Errorf("no process named %q (does the pod set shareProcessNamespace: true?)", n.opts.Process)
		}
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil {
			errs = append(errs, fmt.Errorf("send %s to pid %d: %w", n.opts.Signal, pid, err))
		}
	}
	return errors.Join(errs...)
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read --notify-pid-file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid < 2 {
		return 0, fmt.Errorf("--notify-pid-file %s does not hold a process id above 1", path)
	}
	return pid, nil
}

// FindProcesses lists the pids under procDir (/proc) whose comm is name,
// leaving out this process.
func FindProcesses(procDir, name string) ([]int, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procDir, e.Name(), "comm"))
		if err != nil {
			continue // the process ended meanwhile
		}
		if strings.TrimSuffix(string(comm), "\n") == name {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
