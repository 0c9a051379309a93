package watchdoghealthz

import (
	"slices"
	"time"
)

// History is what the sidecar has seen of the pod's annotations: with the
// time, all that Decide needs. Observe returns a new History and leaves the
// old one unchanged.
//
// The error-free clock (ErrorFreeSince) works like this:
//
//	process start ──► first read ──► ... ──► error seen ──► error gone ──►
//	 clock starts       (unless        |      clock stops     clock starts
//	 here               blocked)       |      (BlockedAt)     again at the
//	                                   |                      recovery time
//
// The pod is blocked by any watchdog in error, and, before the clock first
// starts, by any declared watchdog without a status. When the block ends,
// the clock starts at the latest status timestamp of the watchdogs that
// blocked it, provided that timestamp is after the last observation that
// saw the block and not in the future; otherwise at the observation that
// saw the block end.
type History struct {
	// Started is when the process started: the error-free clock starts
	// there when the first read finds nothing blocking.
	Started time.Time
	// Read is true once the annotations were read.
	Read bool
	// ObservedAt is when they were last read with a change.
	ObservedAt time.Time
	// Watchdogs is what the last annotations said.
	Watchdogs Watchdogs
	// Ever is true once the error-free clock has started. From then on,
	// a declared watchdog without a status no longer blocks.
	Ever bool
	// ErrorFreeSince is when the current error-free stretch started; zero
	// while the pod is blocked.
	ErrorFreeSince time.Time
	// BlockedAt is the last observation that found the pod blocked; zero
	// when none did.
	BlockedAt time.Time
	// Blockers are the watchdogs that blocked it then, sorted.
	Blockers []string
}

// NewHistory is the history of a sidecar started at started that has not
// read the annotations yet.
func NewHistory(started time.Time) History { return History{Started: started} }

// Observe returns h after the annotations were read at now.
func (h History) Observe(annotations map[string]string, now time.Time) History {
	next := h
	next.Read, next.ObservedAt = true, now
	next.Watchdogs = ReadWatchdogs(annotations)
	blockers := next.Watchdogs.Errors()
	if len(blockers) == 0 && !h.Ever {
		blockers = next.Watchdogs.Missing()
	}
	if len(blockers) > 0 {
		next.ErrorFreeSince = time.Time{}
		next.BlockedAt, next.Blockers = now, blockers
		return next
	}
	if next.ErrorFreeSince.IsZero() {
		next.ErrorFreeSince, next.Ever = h.clockStart(next.Watchdogs, now), true
	}
	return next
}

// clockStart is when the error-free clock starts, for a block that is
// found over at now with the watchdogs w.
func (h History) clockStart(w Watchdogs, now time.Time) time.Time {
	if h.BlockedAt.IsZero() {
		return h.Started
	}
	// Each blocker's timestamp is when it entered its current level: when it
	// left error, or got its first status. The latest is when the block
	// ended, if the prober's clock can be trusted that far.
	var latest time.Time
	for _, name := range h.Blockers {
		st, ok := w.Statuses[name]
		if !ok {
			return now
		}
		if st.Time.After(latest) {
			latest = st.Time
		}
	}
	if latest.After(h.BlockedAt) && !latest.After(now) {
		return latest
	}
	return now
}

// equalBlock reports whether two histories are blocked, or not, by the
// same watchdogs: the sidecar logs only when that changes.
func (h History) equalBlock(other History) bool {
	return h.ErrorFreeSince.Equal(other.ErrorFreeSince) && slices.Equal(h.Blockers, other.Blockers)
}
