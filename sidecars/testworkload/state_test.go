package testworkload

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestStateAt(t *testing.T) {
	tests := map[string]struct {
		state       State
		now         time.Time
		want        State
		wantMessage string
	}{
		"ok stays ok": {
			state: State{Mode: ModeOK, Since: t0}, now: t0.Add(time.Hour),
			want: State{Mode: ModeOK, Since: t0}, wantMessage: "ok",
		},
		"failing without limit lasts": {
			state: State{Mode: ModeFailing, Since: t0}, now: t0.Add(1000 * time.Hour),
			want:        State{Mode: ModeFailing, Since: t0},
			wantMessage: "failing until POST /recover (since 2030-01-02T03:04:05Z)",
		},
		"failing one second before the end": {
			state: State{Mode: ModeFailing, Since: t0, Until: t0.Add(30 * time.Second)}, now: t0.Add(29 * time.Second),
			want:        State{Mode: ModeFailing, Since: t0, Until: t0.Add(30 * time.Second)},
			wantMessage: "failing for 30s (since 2030-01-02T03:04:05Z, until 2030-01-02T03:04:35Z)",
		},
		"failing ends exactly at until": {
			state: State{Mode: ModeFailing, Since: t0, Until: t0.Add(30 * time.Second)}, now: t0.Add(30 * time.Second),
			want: State{Mode: ModeOK, Since: t0.Add(30 * time.Second)}, wantMessage: "ok",
		},
		"warning ends after until": {
			state: State{Mode: ModeWarning, Since: t0, Until: t0.Add(time.Minute)}, now: t0.Add(time.Hour),
			want: State{Mode: ModeOK, Since: t0.Add(time.Minute)}, wantMessage: "ok",
		},
		"warning message": {
			state: State{Mode: ModeWarning, Since: t0, Until: t0.Add(90 * time.Second)}, now: t0,
			want:        State{Mode: ModeWarning, Since: t0, Until: t0.Add(90 * time.Second)},
			wantMessage: "warning for 1m30s (since 2030-01-02T03:04:05Z, until 2030-01-02T03:05:35Z)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.state.At(tc.now)
			if got != tc.want {
				t.Errorf("At = %+v, want %+v", got, tc.want)
			}
			if msg := got.Message(); msg != tc.wantMessage {
				t.Errorf("Message = %q, want %q", msg, tc.wantMessage)
			}
		})
	}
}

func TestParseFor(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		"empty means no limit": {in: "", want: 0},
		"seconds":              {in: "30s", want: 30 * time.Second},
		"compound":             {in: "1h2m3s", want: time.Hour + 2*time.Minute + 3*time.Second},
		"the maximum":          {in: "168h", want: MaxFor},
		"no unit":              {in: "30", wantErr: `for="30": not a duration such as 30s or 5m`},
		"word":                 {in: "soon", wantErr: `for="soon": not a duration such as 30s or 5m`},
		"zero":                 {in: "0s", wantErr: `for="0s": must be more than 0s and at most 168h0m0s`},
		"negative":             {in: "-5s", wantErr: `for="-5s": must be more than 0s and at most 168h0m0s`},
		"too long a failure":   {in: "169h", wantErr: `for="169h": must be more than 0s and at most 168h0m0s`},
		"quoted in the error":  {in: "1\n", wantErr: `for="1\n": not a duration such as 30s or 5m`},
		"huge input": {in: strings.Repeat("9", 100),
			wantErr: `for="99999999999999999999999999999999"...: too long; want a duration such as 30s or 5m`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseFor(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("ParseFor(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseFor(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseFor(f *testing.F) {
	for _, s := range []string{"", "30s", "1h2m", "0", "-1s", "168h0m0.000000001s", "1e9h", ".5s", "5µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseFor(s)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes for an input of %d: %q", len(err.Error()), len(s), err)
			}
			return
		}
		if s == "" {
			if d != 0 {
				t.Fatalf("ParseFor(\"\") = %v", d)
			}
			return
		}
		if d <= 0 || d > MaxFor {
			t.Fatalf("ParseFor(%q) = %v, outside (0, %v]", s, d, MaxFor)
		}
	})
}
