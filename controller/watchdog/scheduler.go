package watchdog

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// TargetKey names one watchdog of one pod in the scheduler.
type TargetKey struct {
	UID  string
	Name string
}

// Scheduler runs each target's probe once per period, with jitter, on a
// bounded pool of workers. A target whose last probe is still running is
// not probed again until it ends, so a slow pod cannot take every worker.
type Scheduler struct {
	// Workers is the pool size; 0 means 32.
	Workers int
	// Run probes one target. It runs on a worker.
	Run   func(ctx context.Context, t Target)
	Clock clock.WithTicker

	mu    sync.Mutex
	items map[TargetKey]*scheduled
	queue dueQueue
	wake  chan struct{}
}

type scheduled struct {
	key     TargetKey
	target  Target
	period  time.Duration
	due     time.Time
	index   int // in queue; -1 while running or removed
	running bool
	removed bool
}

// Set adds a target or changes its address, probe or period. A new target
// is first probed at a random point within its first period, so targets
// added together spread out.
func (s *Scheduler) Set(key TargetKey, t Target, period time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if it, ok := s.items[key]; ok {
		it.target = t
		if it.period != period {
			it.period = period
			if it.index >= 0 {
				it.due = s.clock().Now().Add(jitter(period))
				heap.Fix(&s.queue, it.index)
			}
		}
		s.poke()
		return
	}
	it := &scheduled{key: key, target: t, period: period, due: s.clock().Now().Add(jitter(period)), index: -1}
	s.items[key] = it
	heap.Push(&s.queue, it)
	s.poke()
}

// Remove stops probing a target.
func (s *Scheduler) Remove(key TargetKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	it, ok := s.items[key]
	if !ok {
		return
	}
	delete(s.items, key)
	it.removed = true
	if it.index >= 0 {
		heap.Remove(&s.queue, it.index)
	}
}

// Len is the number of targets.
func (s *Scheduler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

// Start runs the scheduler until ctx ends; it is a manager Runnable.
func (s *Scheduler) Start(ctx context.Context) error {
	workers := s.Workers
	if workers <= 0 {
		workers = 32
	}
	s.mu.Lock()
	s.init()
	s.mu.Unlock()

	work := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range work {
				s.Run(ctx, j.target)
				s.done(j.it)
			}
		})
	}
	defer wg.Wait()
	defer close(work)

	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var j job
		j, timer = s.next(timer)
		if j.it != nil {
			select {
			case work <- j:
			case <-ctx.Done():
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer.C():
		}
	}
}

// NeedLeaderElection makes only the leader probe.
func (s *Scheduler) NeedLeaderElection() bool { return true }

// job is one probe handed to a worker. The target is copied under the
// lock, because Set may change the scheduled one while the probe runs.
type job struct {
	it     *scheduled
	target Target
}

// next stops the last timer, then pops the first due target, or arms a
// timer for when one is due. Both happen under the lock, from one reading
// of the clock: a clock that moves in between (a fake clock in tests) can
// not leave a timer armed for a stale wait.
func (s *Scheduler) next(last clock.Timer) (job, clock.Timer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last != nil {
		last.Stop()
	}
	if s.queue.Len() == 0 {
		return job{}, s.clock().NewTimer(time.Hour)
	}
	now := s.clock().Now()
	first := s.queue[0]
	if wait := first.due.Sub(now); wait > 0 {
		return job{}, s.clock().NewTimer(wait)
	}
	heap.Pop(&s.queue)
	first.running = true
	// The next probe is due one period after this one was, not after it
	// ends, so periods do not drift; a small jitter keeps targets spread.
	first.due = first.due.Add(first.period + jitter(first.period/10))
	if first.due.Before(now) {
		first.due = now.Add(jitter(first.period))
	}
	return job{it: first, target: first.target}, nil
}

func (s *Scheduler) done(it *scheduled) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it.running = false
	if !it.removed {
		heap.Push(&s.queue, it)
		s.poke()
	}
}

func (s *Scheduler) init() {
	if s.items == nil {
		s.items = map[TargetKey]*scheduled{}
		s.wake = make(chan struct{}, 1)
	}
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) clock() clock.WithTicker {
	if s.Clock == nil {
		return clock.RealClock{}
	}
	return s.Clock
}

// jitter is a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// dueQueue is a min-heap of targets by due time.
type dueQueue []*scheduled

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dueQueue) Push(x any) {
	it := x.(*scheduled)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *dueQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	it.index = -1
	return it
}
