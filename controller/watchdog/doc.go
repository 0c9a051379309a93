// Package watchdog is the prober: it probes every watchdog that pods declare
// with probe.autocrane.io/NAME, turns the results into levels with the
// thresholds of watchdog.autocrane.io/*, and records them on the pod as
// status.autocrane.io/NAME annotations and the status.autocrane.io/health
// label, writing only on a transition.
//
// The pieces: Tracker is the pure level state machine of one watchdog;
// Decide turns a pod and its trackers into the patch to write (pure); Prober
// makes one guarded HTTP request; Scheduler runs the probes with a bounded
// worker pool; Reconciler ties them to the pod cache.
package watchdog
