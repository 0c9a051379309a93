//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// unschedulableKey keeps the steady pods Pending: they go through admission
// and are stored like any pod, but never run, so hundreds of them cost the
// two-core node nothing.
const unschedulableKey = "e2e.test/never-scheduled"

// admission is the answer to one pod creation.
type admission struct {
	name     string
	at       time.Time
	took     time.Duration
	err      error
	injected bool
}

func (a admission) failed() bool { return a.err != nil || !a.injected }

// steadyCreator creates real pods in an opted-in namespace, one after the
// other at a fixed pace, and records every answer: the load that must see
// no failed admission while AutoCrane's pods are killed or its certificate
// rotates.
type steadyCreator struct {
	ns     string
	prefix string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	results []admission
}

// startSteadyCreates starts creating pods in ns every interval until stop.
// Each pod asks for the watchdoghealthz canary, so it reaches both the
// mutating and the validating webhook and comes back injected.
func startSteadyCreates(t *testing.T, ns, prefix string, interval time.Duration) *steadyCreator {
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	c := &steadyCreator{ns: ns, prefix: prefix, cancel: cancel, done: make(chan struct{})}
	go c.run(ctx, interval)
	t.Cleanup(func() { c.stop() })
	return c
}

func (c *steadyCreator) run(ctx context.Context, interval time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		c.record(createSteadyPod(ctx, c.ns, fmt.Sprintf("%s-%05d", c.prefix, i)))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// createSteadyPod creates one pod. The call gets its own deadline, well
// past the webhooks' timeoutSeconds, so that stopping the load never cuts
// a creation short and counts it as a failure.
func createSteadyPod(ctx context.Context, ns, name string) admission {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"app": "steady"},
			Annotations: map[string]string{"healthz.autocrane.io/min-ready-seconds": "1"}},
		Spec: neverScheduledPodSpec(),
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	start := time.Now()
	got, err := env.cs.CoreV1().Pods(ns).Create(callCtx, pod, metav1.CreateOptions{})
	a := admission{name: name, at: start, took: time.Since(start), err: err}
	if err == nil {
		_, marked := got.Annotations[spec.AnnotationInjected]
		a.injected = marked && hasContainer(got.Spec.Containers, injector.ContainerWatchdogHealthz)
	}
	return a
}

func (c *steadyCreator) record(a admission) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results = append(c.results, a)
}

// stop ends the load, waits for the creation in flight, and returns every
// answer; later calls return the same.
func (c *steadyCreator) stop() []admission {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]admission(nil), c.results...)
}

// admissionStats summarizes answers: how many, how many failed (with each
// failure's time and error), and the latency quantiles.
type admissionStats struct {
	total, failed   int
	p50, p99, max   time.Duration
	failures        []string
	firstAt, lastAt time.Time
}

func summarize(results []admission) admissionStats {
	var st admissionStats
	st.total = len(results)
	if st.total == 0 {
		return st
	}
	st.firstAt, st.lastAt = results[0].at, results[len(results)-1].at
	took := make([]time.Duration, 0, len(results))
	for _, a := range results {
		took = append(took, a.took)
		if !a.failed() {
			continue
		}
		st.failed++
		why := "created but not injected"
		if a.err != nil {
			why = a.err.Error()
		}
		st.failures = append(st.failures, fmt.Sprintf("%s %s (after %s): %s",
			a.at.Format("15:04:05.000"), a.name, a.took.Round(time.Millisecond), why))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	st.p50 = took[len(took)/2]
	st.p99 = took[(len(took)*99)/100]
	st.max = took[len(took)-1]
	return st
}

func (st admissionStats) String() string {
	return fmt.Sprintf("%d creations (%s to %s), %d failed; latency p50 %s, p99 %s, max %s",
		st.total, st.firstAt.Format("15:04:05"), st.lastAt.Format("15:04:05"), st.failed,
		st.p50.Round(time.Millisecond), st.p99.Round(time.Millisecond), st.max.Round(time.Millisecond))
}

// requireNoFailedAdmission fails the test when any creation failed or came
// back without the injection, listing each one.
func requireNoFailedAdmission(t *testing.T, what string, results []admission) {
	t.Helper()
	st := summarize(results)
	t.Logf("%s: %s", what, st)
	if st.total == 0 {
		t.Fatalf("%s: no pod creation was attempted", what)
	}
	if st.failed > 0 {
		t.Errorf("%s: %d of %d admissions failed:\n%s", what, st.failed, st.total, strings.Join(st.failures, "\n"))
	}
}
