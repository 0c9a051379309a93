package spec

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Level is a watchdog's level. The zero value is no level (unknown).
type Level string

// The levels, from best to worst.
const (
	LevelInfo    Level = "info"
	LevelWarning Level = "warning"
	LevelError   Level = "error"
)

// HealthUnknown is the health label's value when no watchdog result is fresh.
const HealthUnknown = "unknown"

// Levels lists the levels from best to worst.
var Levels = []Level{LevelInfo, LevelWarning, LevelError}

// ParseLevel parses a level name.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case LevelInfo, LevelWarning, LevelError:
		return l, nil
	}
	return "", fmt.Errorf("level %q is not one of info, warning, error", shown(s))
}

// Worse reports whether l is worse than other. Any level is worse than none.
func (l Level) Worse(other Level) bool { return l.rank() > other.rank() }

func (l Level) rank() int {
	switch l {
	case LevelInfo:
		return 1
	case LevelWarning:
		return 2
	case LevelError:
		return 3
	}
	return 0
}

// MaxStatusMessage bounds the MESSAGE of a status value, in bytes.
const MaxStatusMessage = 256

// WatchdogStatus is the value of status.autocrane.io/NAME:
// LEVEL/TIMESTAMP/MESSAGE.
type WatchdogStatus struct {
	Level Level
	// Time is when the level was entered, in whole seconds, UTC.
	Time    time.Time
	Message string
}

// String formats the status as LEVEL/RFC3339/MESSAGE, with the message
// sanitized.
func (s WatchdogStatus) String() string {
	return string(s.Level) + "/" + s.Time.UTC().Truncate(time.Second).Format(time.RFC3339) + "/" + SanitizeMessage(s.Message)
}

// ParseWatchdogStatus parses LEVEL/TIMESTAMP/MESSAGE. The message may
// contain "/".
func ParseWatchdogStatus(v string) (WatchdogStatus, error) {
	parts := strings.SplitN(v, "/", 3)
	if len(parts) != 3 {
		return WatchdogStatus{}, errors.New("want LEVEL/TIMESTAMP/MESSAGE")
	}
	l, err := ParseLevel(parts[0])
	if err != nil {
		return WatchdogStatus{}, err
	}
	t, err := parseTimestamp("timestamp", parts[1])
	if err != nil {
		return WatchdogStatus{}, err
	}
	if len(parts[2]) > MaxStatusMessage {
		return WatchdogStatus{}, fmt.Errorf("message is %d bytes, more than %d", len(parts[2]), MaxStatusMessage)
	}
	return WatchdogStatus{Level: l, Time: t, Message: parts[2]}, nil
}

// parseTimestamp parses an RFC 3339 time into UTC. It refuses a time whose
// offset moves it out of the years 0 to 9999, which RFC 3339 cannot write in
// UTC, so that every accepted value can be written back.
func parseTimestamp(what, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not RFC 3339", what, shown(v))
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("%s %q is out of range", what, shown(v))
	}
	return t, nil
}

// SanitizeMessage makes text safe to store and show: printable ASCII only
// (anything else becomes "?"), runs of white space folded to one space, and
// at most MaxStatusMessage bytes.
func SanitizeMessage(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if b.Len() >= MaxStatusMessage {
			break
		}
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case r < 0x21 || r > 0x7e:
			r = '?'
		}
		if space {
			// A space needs a character after it, or the cut message
			// would end in white space.
			if b.Len()+1 >= MaxStatusMessage {
				break
			}
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Health is the health label's value for a pod whose fresh watchdog levels
// are levels: the worst of them, or HealthUnknown when there is none.
func Health(levels []Level) string {
	var worst Level
	for _, l := range levels {
		if l.Worse(worst) {
			worst = l
		}
	}
	if worst == "" {
		return HealthUnknown
	}
	return string(worst)
}

// ErrorSince is when the pod's health became error, as far as its recorded
// statuses tell: the earliest timestamp among its watchdogs now in error.
// ok is false when none is in error.
func ErrorSince(annotations map[string]string) (since time.Time, ok bool) {
	for k, v := range annotations {
		if !strings.HasPrefix(k, PrefixWatchdogStatus) {
			continue
		}
		st, err := ParseWatchdogStatus(v)
		if err != nil || st.Level != LevelError {
			continue
		}
		if !ok || st.Time.Before(since) {
			since, ok = st.Time, true
		}
	}
	return since, ok
}
