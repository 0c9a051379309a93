// Command proberload measures the watchdog prober at scale: it runs the
// prober's scheduler, guarded HTTP prober, level trackers and write
// decisions (controller/watchdog) against N simulated pods, each a real
// HTTP server on its own loopback IP (127.0.X.Y) in child processes, and
// reports probes per second, CPU share, memory and the API writes the
// prober would make per minute in steady state.
//
//	go run ./hack/proberload --pods 10000 --watchdogs 2 --period 10s --duration 2m
//
// Pods are fed to the prober's core directly, not through an API server: the
// numbers are the prober's own cost. See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/controller/watchdog"
	"github.com/autocrane/autocrane/spec"
)

type options struct {
	pods, watchdogs, workers, servers int
	period, duration, warmup          time.Duration
	serveFrom, serveTo, port          int
}

func main() {
	var o options
	flag.IntVar(&o.pods, "pods", 10000, "simulated pods")
	flag.IntVar(&o.watchdogs, "watchdogs", 2, "watchdogs per pod (on one port, different paths)")
	flag.IntVar(&o.workers, "workers", 32, "prober workers (the manager's --probe-workers)")
	flag.IntVar(&o.servers, "servers", 4, "child processes serving the pods' endpoints")
	flag.DurationVar(&o.period, "period", 10*time.Second, "probe period")
	flag.DurationVar(&o.warmup, "warmup", 0, "time before measuring; 0: two periods")
	flag.DurationVar(&o.duration, "duration", time.Minute, "measured time, after the warm-up")
	flag.IntVar(&o.serveFrom, "serve-from", -1, "internal: serve pods [serve-from, serve-to) and wait")
	flag.IntVar(&o.serveTo, "serve-to", 0, "internal")
	flag.IntVar(&o.port, "port", 0, "internal: the pods' port")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if o.serveFrom >= 0 {
		err = serve(ctx, o)
	} else {
		err = measure(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "proberload:", err)
		os.Exit(1)
	}
}

// podIP is pod i's loopback address.
func podIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250) }

// serve answers every watchdog of pods [from, to) with 200 until ctx ends.
func serve(ctx context.Context, o options) error {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	for i := o.serveFrom; i < o.serveTo; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(podIP(i), strconv.Itoa(o.port)))
		if err != nil {
			return fmt.Errorf("listen for pod %d: %w", i, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
		go func() { _ = srv.Serve(ln) }()
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}

type ips map[types.UID]string

func (m ips) CurrentIP(uid types.UID) (string, bool) { ip, ok := m[uid]; return ip, ok }

type pod struct {
	mu          sync.Mutex
	annotations map[string]string
	labels      map[string]string
	probes      []spec.Probe
	trackers    map[string]*watchdog.Tracker
}

func measure(ctx context.Context, o options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	stopServers, err := startServers(ctx, o, port)
	defer stopServers()
	if err != nil {
		return err
	}
	w := spec.DefaultWatchdog()
	w.Period = o.period
	podIPs := ips{}
	pods := make([]*pod, o.pods)
	for i := range pods {
		p := &pod{annotations: map[string]string{}, labels: map[string]string{}, trackers: map[string]*watchdog.Tracker{}}
		for j := range o.watchdogs {
			name := fmt.Sprintf("w%d", j)
			p.probes = append(p.probes, spec.Probe{Name: name, Scheme: "http", Port: port, Path: "/" + name})
			p.trackers[name] = &watchdog.Tracker{}
		}
		pods[i] = p
		podIPs[types.UID(strconv.Itoa(i))] = podIP(i)
	}
	prober := watchdog.NewProber(podIPs, watchdog.ProberOptions{})
	var probes, failures atomic.Int64
	sched := &watchdog.Scheduler{Workers: o.workers, Run: func(ctx context.Context, t watchdog.Target) {
		res, skipped := prober.Probe(ctx, t)
		if skipped {
			return
		}
		probes.Add(1)
		if !res.OK {
			failures.Add(1)
		}
		i, _ := strconv.Atoi(string(t.UID))
		p := pods[i]
		p.mu.Lock()
		p.trackers[t.Probe.Name].Observe(res, w)
		p.mu.Unlock()
	}}
	for i, p := range pods {
		for _, pr := range p.probes {
			uid := types.UID(strconv.Itoa(i))
			sched.Set(watchdog.TargetKey{UID: string(uid), Name: pr.Name}, watchdog.Target{UID: uid, Probe: pr, IP: podIP(i), Timeout: w.Timeout}, w.Period)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = sched.Start(runCtx) }()

	// The reconciler's part: decide each pod's patch once per period and
	// apply it to the in-memory pod, counting the writes it would make.
	var writes atomic.Int64
	go func() {
		ticker := time.NewTicker(o.period)
		defer ticker.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-ticker.C:
			}
			now := time.Now()
			for _, p := range pods {
				p.mu.Lock()
				patch := watchdog.Decide(watchdog.PodState{Annotations: p.annotations, Labels: p.labels, Probes: p.probes, Trackers: p.trackers, Watchdog: w}, now)
				if !patch.Empty() {
					writes.Add(1)
					apply(p.annotations, patch.Annotations)
					apply(p.labels, patch.Labels)
				}
				p.mu.Unlock()
			}
		}
	}()

	warmup := o.warmup
	if warmup == 0 {
		warmup = 2 * o.period
	}
	fmt.Printf("%d pods x %d watchdogs, period %s, %d workers; warming up %s\n", o.pods, o.watchdogs, o.period, o.workers, warmup)
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	p0, f0, w0, cpu0, t0 := probes.Load(), failures.Load(), writes.Load(), cpuTime(), time.Now()
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
		return ctx.Err()
	}
	elapsed := time.Since(t0).Seconds()
	cpu := (cpuTime() - cpu0).Seconds()
	n := probes.Load() - p0
	fmt.Printf("measured %.0f s: %.0f probes/s (want %.0f), %d failed, CPU %.2f cores, RSS %s (peak %s), %.1f writes/min in steady state\n",
		elapsed, float64(n)/elapsed, float64(o.pods*o.watchdogs)/o.period.Seconds(), failures.Load()-f0,
		cpu/elapsed, procStatus("VmRSS"), procStatus("VmHWM"), float64(writes.Load()-w0)/elapsed*60)
	return nil
}

func apply(m map[string]string, changes map[string]*string) {
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = *v
		}
	}
}

func startServers(ctx context.Context, o options, port int) (stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return func() {}, err
	}
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	per := (o.pods + o.servers - 1) / o.servers
	for from := 0; from < o.pods; from += per {
		to := min(from+per, o.pods)
		cmd := exec.CommandContext(ctx, self, "--serve-from", strconv.Itoa(from), "--serve-to", strconv.Itoa(to), "--port", strconv.Itoa(port))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return stop, err
		}
		if err := cmd.Start(); err != nil {
			return stop, err
		}
		cmds = append(cmds, cmd)
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil || string(buf[:5]) != "ready" {
			return stop, fmt.Errorf("server for pods %d-%d did not start: %v", from, to, err)
		}
	}
	return stop, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func procStatus(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > len(field) && line[:len(field)] == field {
			return strings.TrimSpace(line[len(field)+1:])
		}
	}
	return "?"
}
