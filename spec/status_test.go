package spec

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseLevel(t *testing.T) {
	for _, l := range Levels {
		got, err := ParseLevel(string(l))
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %q, %v", l, got, err)
		}
	}
	for _, s := range []string{"", "INFO", "Info", "info ", "unknown", "err"} {
		_, err := ParseLevel(s)
		want := `level "` + s + `" is not one of info, warning, error`
		if err == nil || err.Error() != want {
			t.Errorf("ParseLevel(%q) error = %v, want %q", s, err, want)
		}
	}
}

func TestLevelWorse(t *testing.T) {
	order := []Level{"", LevelInfo, LevelWarning, LevelError}
	for i, a := range order {
		for j, b := range order {
			if got, want := a.Worse(b), i > j; got != want {
				t.Errorf("%q.Worse(%q) = %v, want %v", a, b, got, want)
			}
		}
	}
}

func TestHealth(t *testing.T) {
	tests := []struct {
		levels []Level
		want   string
	}{
		{nil, HealthUnknown},
		{[]Level{}, HealthUnknown},
		{[]Level{""}, HealthUnknown},
		{[]Level{LevelInfo}, "info"},
		{[]Level{LevelInfo, LevelInfo}, "info"},
		{[]Level{LevelInfo, LevelWarning}, "warning"},
		{[]Level{LevelWarning, LevelInfo}, "warning"},
		{[]Level{LevelInfo, LevelError, LevelWarning}, "error"},
		{[]Level{LevelError, ""}, "error"},
		{[]Level{"", LevelWarning}, "warning"},
	}
	for _, tt := range tests {
		if got := Health(tt.levels); got != tt.want {
			t.Errorf("Health(%q) = %q, want %q", tt.levels, got, tt.want)
		}
	}
}

func TestParseWatchdogStatus(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want WatchdogStatus
		err  string
	}{
		{in: "info/2024-05-01T10:00:00Z/HTTP 200", want: WatchdogStatus{Level: LevelInfo, Time: at, Message: "HTTP 200"}},
		{in: "warning/2024-05-01T10:00:00Z/", want: WatchdogStatus{Level: LevelWarning, Time: at}},
		// The message may hold "/".
		{in: "error/2024-05-01T10:00:00Z/GET /healthz: 500/503", want: WatchdogStatus{Level: LevelError, Time: at, Message: "GET /healthz: 500/503"}},
		// Offsets are read, and the time is kept in UTC.
		{in: "info/2024-05-01T12:00:00+02:00/x", want: WatchdogStatus{Level: LevelInfo, Time: at, Message: "x"}},
		{in: "info/2024-05-01T10:00:00.5Z/x", want: WatchdogStatus{Level: LevelInfo, Time: at.Add(500 * time.Millisecond), Message: "x"}},
		{in: "info/2024-05-01T10:00:00Z/" + strings.Repeat("m", 256), want: WatchdogStatus{Level: LevelInfo, Time: at, Message: strings.Repeat("m", 256)}},
		{in: "", err: "want LEVEL/TIMESTAMP/MESSAGE"},
		{in: "info", err: "want LEVEL/TIMESTAMP/MESSAGE"},
		{in: "info/2024-05-01T10:00:00Z", err: "want LEVEL/TIMESTAMP/MESSAGE"},
		{in: "unknown/2024-05-01T10:00:00Z/x", err: `level "unknown" is not one of info, warning, error`},
		{in: "/2024-05-01T10:00:00Z/x", err: `level "" is not one of info, warning, error`},
		{in: "info/yesterday/x", err: `timestamp "yesterday" is not RFC 3339`},
		{in: "info/2024-05-01 10:00:00Z/x", err: `timestamp "2024-05-01 10:00:00Z" is not RFC 3339`},
		{in: "info/1714557600/x", err: `timestamp "1714557600" is not RFC 3339`},
		{in: "info/2024-05-01T10:00:00Z/" + strings.Repeat("m", 257), err: "message is 257 bytes, more than 256"},
		// A time that is only valid with its offset would not survive
		// being written back in UTC (year 10000).
		{in: "info/9999-12-31T23:59:59-01:00/x", err: `timestamp "9999-12-31T23:59:59-01:00" is out of range`},
		{in: "info/0000-01-01T00:00:00+01:00/x", err: `timestamp "0000-01-01T00:00:00+01:00" is out of range`},
	}
	for _, tt := range tests {
		got, err := ParseWatchdogStatus(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseWatchdogStatus(%.60q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWatchdogStatus(%.60q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseWatchdogStatus(%.60q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestWatchdogStatusString(t *testing.T) {
	tests := []struct {
		in   WatchdogStatus
		want string
	}{
		{WatchdogStatus{Level: LevelInfo, Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Message: "HTTP 200"}, "info/2024-05-01T10:00:00Z/HTTP 200"},
		// Whole seconds, in UTC.
		{WatchdogStatus{Level: LevelError, Time: time.Date(2024, 5, 1, 12, 0, 0, 999_999_999, time.FixedZone("x", 2*3600)), Message: "no answer within 2s"},
			"error/2024-05-01T10:00:00Z/no answer within 2s"},
		// The message is sanitized.
		{WatchdogStatus{Level: LevelWarning, Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Message: " disk\n\t97%\x00 full é "},
			"warning/2024-05-01T10:00:00Z/disk 97%? full ?"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSanitizeMessage(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "HTTP 500", "HTTP 500"},
		{"printable ASCII kept", "!~/{}\"'\\<>", "!~/{}\"'\\<>"},
		{"control characters", "a\x00b\x07c\x1bd\x7fe", "a?b?c?d?e"},
		{"non-ASCII letter", "héllo", "h?llo"},
		{"emoji is one rune", "ok 🙂", "ok ?"},
		{"invalid UTF-8", "a\xff\xfeb", "a??b"},
		{"white space folded", "a  \t\n\r\v\fb", "a b"},
		{"leading and trailing white space dropped", " \n a b \t ", "a b"},
		{"no-break and next-line spaces are white space", "a\u00a0b\u0085c", "a b c"},
		{"only white space", " \t\n ", ""},
		{"cut at 256 bytes", a(300), a(256)},
		{"non-ASCII counts one byte after replacement", strings.Repeat("é", 300), strings.Repeat("?", 256)},
		{"space kept inside the cap", a(254) + " b", a(254) + " b"},
		// A space the cap would leave last is dropped, not kept trailing.
		{"no trailing space at the cap", a(255) + " bbb", a(255)},
		{"no trailing space at the cap after a run", a(255) + " \t\n bbb", a(255)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeMessage(tt.in)
			if got != tt.want {
				t.Errorf("SanitizeMessage(%.80q) = %.80q (%d bytes), want %.80q (%d bytes)", tt.in, got, len(got), tt.want, len(tt.want))
			}
			checkSanitized(t, got)
		})
	}
}

// checkSanitized checks what SanitizeMessage promises of its output.
func checkSanitized(t *testing.T, s string) {
	t.Helper()
	if len(s) > MaxStatusMessage {
		t.Errorf("sanitized message is %d bytes, more than %d", len(s), MaxStatusMessage)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			t.Errorf("sanitized message %.80q holds byte %#x at %d", s, c, i)
			break
		}
	}
	if strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "  ") {
		t.Errorf("sanitized message %.80q has unfolded white space", s)
	}
	if again := SanitizeMessage(s); again != s {
		t.Errorf("SanitizeMessage is not idempotent: %.80q then %.80q", s, again)
	}
}

func FuzzSanitizeMessage(f *testing.F) {
	f.Add("HTTP 500")
	f.Add(" a \x00\xff é 🙂 \u00a0 ")
	f.Add(strings.Repeat("a", 255) + " b")
	f.Add(strings.Repeat("ab ", 200))
	f.Add(strings.Repeat("\xff", 1000))
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeMessage(s)
		checkSanitized(t, got)
		// Every printable ASCII character that fits is kept, in order:
		// sanitizing only replaces and folds.
		if !utf8.ValidString(s) {
			return
		}
		var words []string
		for _, w := range strings.Fields(s) {
			words = append(words, strings.Map(func(r rune) rune {
				if r < 0x21 || r > 0x7e {
					return '?'
				}
				return r
			}, w))
		}
		full := strings.Join(words, " ")
		if !strings.HasPrefix(full, got) {
			t.Errorf("SanitizeMessage(%.80q) = %.80q, not a prefix of %.80q", s, got, full)
		}
		if len(full) <= MaxStatusMessage && got != full {
			t.Errorf("SanitizeMessage(%.80q) = %.80q, want %.80q", s, got, full)
		}
	})
}

// FuzzParseWatchdogStatus checks that any accepted value formats back into
// a value that parses to the same status, and that String is a fixed
// point: what the prober writes, it reads back unchanged.
func FuzzParseWatchdogStatus(f *testing.F) {
	f.Add("info/2024-05-01T10:00:00Z/HTTP 200")
	f.Add("error/2024-05-01T12:00:00+02:00/a/b/c")
	f.Add("warning/2024-05-01T10:00:00.123456789Z/ \x00 é ")
	f.Add("info/9999-12-31T23:59:59-23:59/x")
	f.Add("info/0000-01-01T00:00:00+23:59/x")
	f.Add("info/2024-05-01T10:00:00Z/" + strings.Repeat("a", 255) + " b")
	f.Add("info/2024-05-01T10:00:00Z/" + strings.Repeat("a", 257))
	f.Add("info//x")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseWatchdogStatus(v)
		if err != nil {
			if n := len(err.Error()); n > 4*maxShown+128 {
				t.Errorf("error message is %d bytes", n)
			}
			return
		}
		if _, err := ParseLevel(string(s.Level)); err != nil {
			t.Errorf("accepted level %q", s.Level)
		}
		if s.Time.Location() != time.UTC {
			t.Errorf("time %v is not in UTC", s.Time)
		}
		out := s.String()
		back, err := ParseWatchdogStatus(out)
		if err != nil {
			t.Fatalf("ParseWatchdogStatus(%q) = %+v, whose String %q does not parse: %v", v, s, out, err)
		}
		want := WatchdogStatus{Level: s.Level, Time: s.Time.Truncate(time.Second), Message: SanitizeMessage(s.Message)}
		if diff := cmp.Diff(want, back); diff != "" {
			t.Errorf("round trip of %q through %q (-want +got):\n%s", v, out, diff)
		}
		if again := back.String(); again != out {
			t.Errorf("String is not a fixed point: %q then %q", out, again)
		}
	})
}

func TestErrorSince(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2024, 5, 1, h, 0, 0, 0, time.UTC) }
	st := func(l Level, h int) string {
		return WatchdogStatus{Level: l, Time: at(h), Message: "HTTP 500"}.String()
	}
	tests := []struct {
		name        string
		annotations map[string]string
		want        time.Time
		ok          bool
	}{
		{name: "none"},
		{name: "healthy", annotations: map[string]string{PrefixWatchdogStatus + "web": st(LevelInfo, 1), PrefixWatchdogStatus + "db": st(LevelWarning, 2)}},
		{name: "one error", annotations: map[string]string{PrefixWatchdogStatus + "web": st(LevelError, 3), PrefixWatchdogStatus + "db": st(LevelWarning, 1)},
			want: at(3), ok: true},
		{name: "the earliest error", annotations: map[string]string{PrefixWatchdogStatus + "web": st(LevelError, 5), PrefixWatchdogStatus + "db": st(LevelError, 2), PrefixWatchdogStatus + "x": st(LevelError, 4)},
			want: at(2), ok: true},
		{name: "unparsable and foreign keys are ignored", annotations: map[string]string{
			PrefixWatchdogStatus + "web": "error/yesterday/x",
			"example.com/web":            st(LevelError, 1),
			PrefixDataStatus + "models":  st(LevelError, 1),
		}},
	}
	for _, tt := range tests {
		got, ok := ErrorSince(tt.annotations)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%s: ErrorSince = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
