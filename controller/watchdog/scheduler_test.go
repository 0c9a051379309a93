package watchdog

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/autocrane/autocrane/spec"
)

// These tests run the scheduler on the real clock with millisecond
// periods. They never measure time: they wait for conditions (a number of
// runs) with a generous deadline, and prove that time passed by counting
// the runs of other targets.

const (
	fast     = time.Millisecond
	deadline = 30 * time.Second
)

// runLog records the scheduler's Run calls.
type runLog struct {
	mu        sync.Mutex
	cond      *sync.Cond
	runs      map[TargetKey]int
	inFlight  map[TargetKey]int
	overlaps  map[TargetKey]int
	targets   map[TargetKey]Target
	active    int
	maxActive int
	total     int
	// block, when set, holds a run of key until it returns.
	block func(ctx context.Context, key TargetKey)
}

func newRunLog() *runLog {
	l := &runLog{runs: map[TargetKey]int{}, inFlight: map[TargetKey]int{}, overlaps: map[TargetKey]int{}, targets: map[TargetKey]Target{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func keyOf(t Target) TargetKey { return TargetKey{UID: string(t.UID), Name: t.Probe.Name} }

func (l *runLog) run(ctx context.Context, t Target) {
	key := keyOf(t)
	l.mu.Lock()
	l.runs[key]++
	l.total++
	l.targets[key] = t
	l.inFlight[key]++
	if l.inFlight[key] > 1 {
		l.overlaps[key]++
	}
	l.active++
	l.maxActive = max(l.maxActive, l.active)
	block := l.block
	l.cond.Broadcast()
	l.mu.Unlock()

	if block != nil {
		block(ctx, key)
	}

	l.mu.Lock()
	l.inFlight[key]--
	l.active--
	l.cond.Broadcast()
	l.mu.Unlock()
}

// waitFor waits until cond holds (checked under the log's lock).
func (l *runLog) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timedOut := false
	timer := time.AfterFunc(deadline, func() {
		l.mu.Lock()
		timedOut = true
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !cond() {
		if timedOut {
			t.Fatalf("gave up waiting for %s; runs %v", what, l.runs)
		}
		l.cond.Wait()
	}
}

func (l *runLog) count(key TargetKey) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runs[key]
}

func schedTarget(uid, name string) (TargetKey, Target) {
	t := Target{UID: types.UID(uid), Namespace: "team", Pod: uid, Probe: spec.Probe{Name: name, Scheme: "http", Port: 8080, Path: "/healthz"}, IP: "127.0.0.1", Timeout: time.Second}
	return keyOf(t), t
}

// start runs s until the test ends, and checks that Start returns.
func start(t *testing.T, s *Scheduler) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(deadline):
			t.Error("Start did not return after its context ended")
		}
	})
}

func TestSchedulerProbesEveryTarget(t *testing.T) {
	log := newRunLog()
	s := &Scheduler{Workers: 4, Run: log.run}
	var keys []TargetKey
	for i := range 20 {
		key, target := schedTarget(fmt.Sprintf("pod-%d", i), "web")
		s.Set(key, target, fast)
		keys = append(keys, key)
	}
	key, target := schedTarget("pod-0", "db")
	s.Set(key, target, fast)
	keys = append(keys, key)
	if n := s.Len(); n != 21 {
		t.Fatalf("Len() = %d, want 21", n)
	}
	start(t, s)
	log.waitFor(t, "three runs of every target", func() bool {
		for _, k := range keys {
			if log.runs[k] < 3 {
				return false
			}
		}
		return true
	})
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, k := range keys {
		if got := keyOf(log.targets[k]); got != k {
			t.Errorf("target of %v is %v", k, got)
		}
	}
}

func TestSchedulerRemoveStopsProbes(t *testing.T) {
	for _, inFlight := range []bool{false, true} {
		t.Run(fmt.Sprint("removed while running: ", inFlight), func(t *testing.T) {
			log := newRunLog()
			gone, goneTarget := schedTarget("pod-gone", "web")
			stays, staysTarget := schedTarget("pod-stays", "web")
			held, release := make(chan struct{}), make(chan struct{})
			if inFlight {
				// The third run of the removed target is held until it is
				// removed.
				log.block = func(ctx context.Context, key TargetKey) {
					if key != gone || log.count(gone) != 3 {
						return
					}
					close(held)
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
			}
			s := &Scheduler{Workers: 2, Run: log.run}
			s.Set(gone, goneTarget, fast)
			s.Set(stays, staysTarget, fast)
			start(t, s)
			log.waitFor(t, "runs of both targets", func() bool { return log.runs[gone] >= 2 && log.runs[stays] >= 2 })
			if inFlight {
				<-held
			}

			s.Remove(gone)
			s.Remove(TargetKey{UID: "never", Name: "added"}) // a no-op
			if n := s.Len(); n != 1 {
				t.Errorf("Len() = %d after Remove, want 1", n)
			}
			atRemoval, staysAtRemoval := log.count(gone), log.count(stays)
			close(release)
			// Fifty periods of the other target pass.
			log.waitFor(t, "50 more runs of the remaining target", func() bool { return log.runs[stays] >= staysAtRemoval+50 })
			extra := log.count(gone) - atRemoval
			switch {
			case inFlight && extra != 0:
				t.Errorf("a target removed while running ran %d more times", extra)
			case extra > 1:
				t.Errorf("a removed target ran %d more times; at most one run already handed to a worker may", extra)
			}
		})
	}
}

func TestSchedulerNeverOverlapsASlowTarget(t *testing.T) {
	log := newRunLog()
	slow, slowTarget := schedTarget("pod-slow", "web")
	quick, quickTarget := schedTarget("pod-quick", "web")
	release := make(chan struct{})
	log.block = func(ctx context.Context, key TargetKey) {
		if key != slow {
			return
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	s := &Scheduler{Workers: 4, Run: log.run}
	s.Set(slow, slowTarget, fast)
	s.Set(quick, quickTarget, fast)
	start(t, s)

	log.waitFor(t, "the slow target to start", func() bool { return log.runs[slow] == 1 })
	// Many of its periods pass while it is held, with workers free.
	log.waitFor(t, "50 runs of the quick target", func() bool { return log.runs[quick] >= 50 })
	if n := log.count(slow); n != 1 {
		t.Errorf("the slow target started %d times while its first run was held", n)
	}
	close(release)
	log.waitFor(t, "the slow target to run again once released", func() bool { return log.runs[slow] >= 3 })
	log.mu.Lock()
	defer log.mu.Unlock()
	if n := log.overlaps[slow]; n != 0 {
		t.Errorf("%d overlapping runs of the slow target", n)
	}
}

func TestSchedulerBoundsConcurrency(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			log := newRunLog()
			release := make(chan struct{})
			log.block = func(ctx context.Context, _ TargetKey) {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			s := &Scheduler{Workers: workers, Run: log.run}
			for i := range 10 {
				key, target := schedTarget(fmt.Sprintf("pod-%d", i), "web")
				s.Set(key, target, fast)
			}
			start(t, s)
			// Every worker is busy; due targets queue behind them.
			log.waitFor(t, "every worker busy", func() bool { return log.active == workers })
			close(release)
			log.waitFor(t, "200 runs", func() bool { return log.total >= 200 })
			log.mu.Lock()
			defer log.mu.Unlock()
			if log.maxActive != workers {
				t.Errorf("at most %d runs at once, want %d (the pool size)", log.maxActive, workers)
			}
		})
	}
}

func TestSchedulerSetChangesThePeriodAndTarget(t *testing.T) {
	log := newRunLog()
	s := &Scheduler{Workers: 2, Run: log.run}
	key, target := schedTarget("pod-a", "web")
	// First probed at a random point of a long period: likely never here.
	s.Set(key, target, 24*time.Hour)
	start(t, s)
	target.IP = "127.0.0.2"
	s.Set(key, target, fast)
	if n := s.Len(); n != 1 {
		t.Errorf("Len() = %d after setting one key twice, want 1", n)
	}
	log.waitFor(t, "runs at the new period", func() bool { return log.runs[key] >= 5 })
	log.mu.Lock()
	defer log.mu.Unlock()
	if ip := log.targets[key].IP; ip != "127.0.0.2" {
		t.Errorf("ran with IP %s, want the new one", ip)
	}
}

func TestSchedulerSetWhileRunningKeepsTheNewTarget(t *testing.T) {
	log := newRunLog()
	key, target := schedTarget("pod-a", "web")
	release := make(chan struct{})
	first := true
	log.block = func(ctx context.Context, _ TargetKey) {
		if !first {
			return
		}
		first = false
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	s := &Scheduler{Workers: 2, Run: log.run}
	s.Set(key, target, fast)
	start(t, s)
	log.waitFor(t, "the first run", func() bool { return log.runs[key] == 1 })
	target.IP = "127.0.0.2"
	s.Set(key, target, 2*fast)
	close(release)
	log.waitFor(t, "runs after the change", func() bool { return log.runs[key] >= 3 })
	log.mu.Lock()
	defer log.mu.Unlock()
	if ip := log.targets[key].IP; ip != "127.0.0.2" {
		t.Errorf("ran with IP %s, want the new one", ip)
	}
	if n := log.overlaps[key]; n != 0 {
		t.Errorf("%d overlapping runs", n)
	}
}

func TestSchedulerStartReturnsWhenCancelled(t *testing.T) {
	tests := []struct {
		name    string
		targets int
		block   bool
	}{
		{"idle", 0, false},
		{"busy", 5, false},
		// Runs hold their worker until their context ends: Start waits
		// for them and still returns.
		{"every worker held", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newRunLog()
			if tt.block {
				log.block = func(ctx context.Context, _ TargetKey) { <-ctx.Done() }
			}
			s := &Scheduler{Workers: 2, Run: log.run}
			for i := range tt.targets {
				key, target := schedTarget(fmt.Sprintf("pod-%d", i), "web")
				s.Set(key, target, fast)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- s.Start(ctx) }()
			if tt.targets > 0 {
				log.waitFor(t, "a run", func() bool { return log.total >= 2 })
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Start() = %v", err)
				}
			case <-time.After(deadline):
				t.Fatal("Start did not return after its context ended")
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			if log.active != 0 {
				t.Errorf("%d runs still active after Start returned", log.active)
			}
		})
	}
}

// TestSchedulerFollowsItsClock drives the scheduler with a fake clock: a
// new target is not probed before the clock moves, and is probed again
// each time the clock passes its period.
func TestSchedulerFollowsItsClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	log := newRunLog()
	// Each probe takes a while on the real clock, as on a loaded machine:
	// the scheduler sleeps while it runs.
	log.block = func(context.Context, TargetKey) { time.Sleep(20 * time.Millisecond) }
	s := &Scheduler{Workers: 2, Run: log.run, Clock: clk}
	key, target := schedTarget("pod-a", "web")
	const period = 10 * time.Second
	s.Set(key, target, period)
	start(t, s)

	// The first probe is due at a random point within the first period,
	// not at once.
	waitForWaiter(t, clk)
	if n := log.count(key); n != 0 {
		t.Fatalf("%d runs before the clock moved", n)
	}
	for round := 1; round <= 5; round++ {
		// Once the last probe has returned the target to the queue, move
		// the clock by two periods: the target is due once more at least.
		stepWhenQueued(t, s, clk, key, 2*period)
		log.waitFor(t, fmt.Sprintf("run %d", round), func() bool { return log.runs[key] >= round })
	}
	if !s.NeedLeaderElection() {
		t.Error("the scheduler probes on every replica; only the leader may")
	}
}

// stepWhenQueued waits until key is back in the scheduler's queue, then
// steps the clock by d. It steps under the scheduler's lock: the
// scheduler reads the clock and arms its timer under that lock too, so it
// either already sleeps on a timer for the target's due time, which the
// step fires, or has yet to read the clock and sees the stepped time.
func stepWhenQueued(t *testing.T, s *Scheduler, clk *clocktesting.FakeClock, key TargetKey, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	for {
		s.mu.Lock()
		it := s.items[key]
		queued := it != nil && it.index >= 0
		if queued {
			clk.Step(d)
		}
		s.mu.Unlock()
		if queued {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("target %v never returned to the queue", key)
		case <-time.After(time.Millisecond):
		}
	}
}

func waitForWaiter(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	for !clk.HasWaiters() {
		select {
		case <-ctx.Done():
			t.Fatal("the scheduler never waited on its clock")
		case <-time.After(time.Millisecond):
		}
	}
}

func TestJitter(t *testing.T) {
	if jitter(0) != 0 || jitter(-time.Second) != 0 {
		t.Error("jitter of a non-positive duration is not zero")
	}
	for range 1000 {
		if j := jitter(time.Second); j < 0 || j >= time.Second {
			t.Fatalf("jitter(1s) = %s", j)
		}
	}
}

// TestSchedulerSetDuringRuns changes targets while workers pick them up;
// run with -race, it checks that a worker never reads a target that Set is
// writing.
func TestSchedulerSetDuringRuns(t *testing.T) {
	log := newRunLog()
	s := &Scheduler{Workers: 4, Run: log.run}
	var keys []TargetKey
	var targets []Target
	for i := range 4 {
		key, target := schedTarget(fmt.Sprintf("pod-%d", i), "web")
		s.Set(key, target, fast)
		keys, targets = append(keys, key), append(targets, target)
	}
	start(t, s)
	for round := range 200 {
		for i, key := range keys {
			targets[i].IP = fmt.Sprintf("127.0.0.%d", 1+round%200)
			s.Set(key, targets[i], fast)
		}
		if round%50 == 0 {
			total := log.count(keys[0])
			log.waitFor(t, "another run", func() bool { return log.runs[keys[0]] > total })
		}
	}
	log.waitFor(t, "runs of every target", func() bool {
		for _, k := range keys {
			if log.runs[k] < 5 {
				return false
			}
		}
		return true
	})
}
