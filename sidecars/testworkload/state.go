package testworkload

import (
	"fmt"
	"strconv"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// Mode is what /watchdog answers.
type Mode string

// The modes. The zero value is not a mode.
const (
	// ModeOK answers 200 with level info.
	ModeOK Mode = "ok"
	// ModeWarning answers 200 with level warning.
	ModeWarning Mode = "warning"
	// ModeFailing answers 500 with level error.
	ModeFailing Mode = "failing"
)

// Modes lists every mode, in a fixed order (the metric's label values).
var Modes = []Mode{ModeOK, ModeWarning, ModeFailing}

// MaxFor bounds for=DURATION. Longer failures are asked for without for=
// and ended with POST /recover.
const MaxFor = 7 * 24 * time.Hour

// State is the watchdog's state: a mode entered at Since, lasting until
// Until (zero: until POST /recover).
type State struct {
	Mode  Mode
	Since time.Time
	Until time.Time
}

// At returns the state in force at now: a mode whose Until has come is over,
// and the watchdog is OK again from Until on.
func (s State) At(now time.Time) State {
	if s.Mode != ModeOK && !s.Until.IsZero() && !now.Before(s.Until) {
		return State{Mode: ModeOK, Since: s.Until}
	}
	return s
}

// Level is the level /watchdog reports in this state.
func (s State) Level() spec.Level {
	switch s.Mode {
	case ModeWarning:
		return spec.LevelWarning
	case ModeFailing:
		return spec.LevelError
	}
	return spec.LevelInfo
}

// Message says what the state is, for /watchdog's body.
func (s State) Message() string {
	if s.Mode == ModeOK {
		return "ok"
	}
	what := "failing"
	if s.Mode == ModeWarning {
		what = "warning"
	}
	since := s.Since.UTC().Format(time.RFC3339)
	if s.Until.IsZero() {
		return fmt.Sprintf("%s until POST /recover (since %s)", what, since)
	}
	return fmt.Sprintf("%s for %s (since %s, until %s)", what, s.Until.Sub(s.Since), since, s.Until.UTC().Format(time.RFC3339))
}

// ParseFor parses the for= query parameter: a Go duration such as 30s or
// 5m, more than zero and at most MaxFor. An empty value means no limit
// (0, nil).
func ParseFor(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if len(v) > 32 {
		return 0, fmt.Errorf("for=%q...: too long; want a duration such as 30s or 5m", v[:32])
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("for=%s: not a duration such as 30s or 5m", strconv.Quote(v))
	}
	if d <= 0 || d > MaxFor {
		return 0, fmt.Errorf("for=%s: must be more than 0s and at most %s", strconv.Quote(v), MaxFor)
	}
	return d, nil
}

// enter returns the state of entering mode at now for d (0: no limit).
func enter(mode Mode, now time.Time, d time.Duration) State {
	s := State{Mode: mode, Since: now}
	if d > 0 {
		s.Until = now.Add(d)
	}
	return s
}
