package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	digestA = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	digestB = "sha256:" + "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
)

func TestParseWaves(t *testing.T) {
	const form = "; a comma-separated list of pod counts and percentages, growing, ending at 100%, such as 1,10%,50%,100%"
	pre := func(v string) string {
		return `metadata.annotations[rollout.data.autocrane.io/waves]: Invalid value: "` + v + `": `
	}
	pct := func(wave, v string) string {
		return pre(v) + `wave "` + wave + `" must be a percentage from 1% to 100%, larger than the one before` + form
	}
	count := func(wave, v string) string {
		return pre(v) + `wave "` + wave + `" must be a pod count larger than the one before, and pod counts come before percentages` + form
	}
	lastNot100 := func(v string) string { return pre(v) + "the last wave must be 100%" + form }
	many := strings.Repeat("1%,", 20) + "100%"

	tests := []struct {
		in   string
		want []Wave
		err  string
	}{
		{in: "1,10%,50%,100%", want: []Wave{{Count: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}},
		{in: "100%", want: []Wave{{Percent: 100}}},
		{in: "1,2,5,100%", want: []Wave{{Count: 1}, {Count: 2}, {Count: 5}, {Percent: 100}}},
		{in: " 1 , 25% ,100% ", want: []Wave{{Count: 1}, {Percent: 25}, {Percent: 100}}},
		{in: "1000000,100%", want: []Wave{{Count: 1000000}, {Percent: 100}}},
		{in: "1%,2%,3%,4%,5%,6%,7%,8%,9%,10%,11%,12%,13%,14%,15%,16%,17%,18%,19%,100%",
			want: func() []Wave {
				var w []Wave
				for i := 1; i < 20; i++ {
					w = append(w, Wave{Percent: i})
				}
				return append(w, Wave{Percent: 100})
			}()},
		{in: "", err: count("", "")},
		{in: "1,,100%", err: count("", "1,,100%")},
		{in: "0,100%", err: count("0", "0,100%")},
		{in: "2,1,100%", err: count("1", "2,1,100%")},
		{in: "2,2,100%", err: count("2", "2,2,100%")},
		{in: "10%,1,100%", err: count("1", "10%,1,100%")},
		{in: "1000001,100%", err: count("1000001", "1000001,100%")},
		{in: "01,100%", err: count("01", "01,100%")},
		{in: "+1,100%", err: count("+1", "+1,100%")},
		{in: "-1,100%", err: count("-1", "-1,100%")},
		{in: "one,100%", err: count("one", "one,100%")},
		{in: "50%,10%,100%", err: pct("10%", "50%,10%,100%")},
		{in: "100%,100%", err: pct("100%", "100%,100%")},
		{in: "0%,100%", err: pct("0%", "0%,100%")},
		{in: "101%", err: pct("101%", "101%")},
		{in: "%", err: pct("%", "%")},
		{in: "1.5%,100%", err: pct("1.5%", "1.5%,100%")},
		{in: "5 %,100%", err: pct("5 %", "5 %,100%")},
		{in: "1,10%,50%", err: lastNot100("1,10%,50%")},
		{in: "1", err: lastNot100("1")},
		{in: many, err: pre(many) + "at most 20 waves" + form},
		{in: strings.Repeat(" ", 250) + "1,100%", want: []Wave{{Count: 1}, {Percent: 100}}}, // 256 bytes
		{in: strings.Repeat(" ", 251) + "1,100%", err: pre(strings.Repeat(" ", 128)+`... (257 bytes)`) + "too long" + form},
	}
	for _, tt := range tests {
		got, err := ParseWaves(tt.in, AnnotationPath(KeyRolloutWaves))
		if diff := cmp.Diff(tt.err, errText(err)); diff != "" {
			t.Errorf("ParseWaves(%.40q) error (-want +got):\n%s", tt.in, diff)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseWaves(%.40q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestWaveSize(t *testing.T) {
	tests := []struct {
		wave  Wave
		total int
		want  int
	}{
		{Wave{Count: 1}, 4, 1},
		{Wave{Percent: 10}, 4, 1},
		{Wave{Percent: 50}, 4, 2},
		{Wave{Percent: 100}, 4, 4},
		{Wave{Percent: 26}, 4, 2}, // rounded up
		{Wave{Percent: 75}, 4, 3},
		{Wave{Percent: 1}, 1, 1},
		{Wave{Percent: 1}, 1000, 10},
		{Wave{Percent: 1}, 1001, 11},
		{Wave{Percent: 99}, 1000, 990},
		{Wave{Count: 10}, 4, 4}, // at most total
		{Wave{Count: 3}, 4, 3},
		{Wave{Percent: 100}, 1, 1},
		{Wave{Count: 1000000}, 1000000, 1000000},
		{Wave{Percent: 100}, 1000000, 1000000},
	}
	for _, tt := range tests {
		if got := tt.wave.Size(tt.total); got != tt.want {
			t.Errorf("%s of %d = %d, want %d", tt.wave, tt.total, got, tt.want)
		}
	}
}

func TestWaveString(t *testing.T) {
	for w, want := range map[Wave]string{{Count: 1}: "1", {Count: 25}: "25", {Percent: 10}: "10%", {Percent: 100}: "100%"} {
		if got := w.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", w, got, want)
		}
	}
}

func TestParseRollout(t *testing.T) {
	def := DefaultRollout()
	if diff := cmp.Diff(Rollout{Waves: []Wave{{Count: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}, Bake: 300 * time.Second}, def); diff != "" {
		t.Fatalf("DefaultRollout() (-want +got):\n%s", diff)
	}
	tests := []struct {
		name        string
		annotations map[string]string
		want        Rollout
		errs        []string
	}{
		{name: "none", want: def},
		{name: "both", annotations: map[string]string{KeyRolloutWaves: "2,100%", KeyRolloutBakeSeconds: "0"},
			want: Rollout{Waves: []Wave{{Count: 2}, {Percent: 100}}}},
		{name: "bad keys keep defaults", annotations: map[string]string{KeyRolloutWaves: "50%", KeyRolloutBakeSeconds: "86401"},
			want: def,
			errs: []string{
				`metadata.annotations[rollout.data.autocrane.io/waves]: Invalid value: "50%": the last wave must be 100%; a comma-separated list of pod counts and percentages, growing, ending at 100%, such as 1,10%,50%,100%`,
				`metadata.annotations[rollout.data.autocrane.io/bake-seconds]: Invalid value: "86401": must be whole seconds from 0 to 86400`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := ParseRollout(tt.annotations)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rollout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errs, messages(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateVersionID(t *testing.T) {
	for _, id := range []string{"v1", "1", "2024.05.01-1", "a" + strings.Repeat("b", 62)} {
		if err := ValidateVersionID(id); err != nil {
			t.Errorf("ValidateVersionID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", "V1", "-v1", ".v1", "v_1", "v/1", "v 1", "a" + strings.Repeat("b", 63), "v1\n"} {
		err := ValidateVersionID(id)
		want := `version id "` + strings.ReplaceAll(id, "\n", `\n`) + `" must be 1 to 63 lower-case letters, digits, '.' or '-', starting with a letter or digit`
		if err == nil || err.Error() != want {
			t.Errorf("ValidateVersionID(%q) = %v, want %q", id, err, want)
		}
	}
}

func TestValidateDigest(t *testing.T) {
	if err := ValidateDigest(digestA); err != nil {
		t.Errorf("ValidateDigest(%q): %v", digestA, err)
	}
	for _, d := range []string{"", "sha256:", strings.ToUpper(digestA), "sha512:" + digestA[7:], digestA + "0", digestA[:len(digestA)-1], "sha256:" + strings.Repeat("g", 64)} {
		err := ValidateDigest(d)
		want := `digest "` + d + `" must be sha256: followed by 64 lower-case hex digits`
		if err == nil || err.Error() != want {
			t.Errorf("ValidateDigest(%q) = %v, want %q", d, err, want)
		}
	}
}

func TestParseDataRequest(t *testing.T) {
	tests := []struct {
		in   string
		want DataRequest
		err  string
	}{
		{in: "models/v1/" + digestA, want: DataRequest{Source: "models", ID: "v1", Digest: digestA}},
		{in: "a/2024.05.01-1/" + digestB, want: DataRequest{Source: "a", ID: "2024.05.01-1", Digest: digestB}},
		{in: "models/v1", err: `"models/v1": want SOURCE/VERSION/DIGEST`},
		{in: "models/v1/" + digestA + "/x", err: `"models/v1/` + digestA + `/x": want SOURCE/VERSION/DIGEST`},
		{in: "", err: `"": want SOURCE/VERSION/DIGEST`},
		{in: "Models/v1/" + digestA, err: "source name must be a DNS-1123 label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"},
		{in: "models/V1/" + digestA, err: `version id "V1" must be 1 to 63 lower-case letters, digits, '.' or '-', starting with a letter or digit`},
		{in: "models/v1/sha256:abc", err: `digest "sha256:abc" must be sha256: followed by 64 lower-case hex digits`},
	}
	for _, tt := range tests {
		got, err := ParseDataRequest(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseDataRequest(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDataRequest(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseDataRequest(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("String() = %q, want %q", s, tt.in)
		}
	}
}

func TestDataStatusString(t *testing.T) {
	since := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   DataStatus
		want string
	}{
		{DataStatus{State: DataSyncing}, "syncing/-/-/-/"},
		{DataStatus{State: DataLive, Version: "v1", Digest: digestA, Since: since}, "live/v1/" + digestA + "/2024-05-01T10:00:00Z/"},
		{DataStatus{State: DataFailed, Version: "v1", Digest: digestA, Since: since.In(time.FixedZone("x", 3600)).Add(time.Millisecond), Message: "fetch v2:\n404 é"},
			"failed/v1/" + digestA + "/2024-05-01T10:00:00Z/fetch v2: 404 ?"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDataStatus(t *testing.T) {
	since := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want DataStatus
		err  string
	}{
		{in: "syncing/-/-/-/", want: DataStatus{State: DataSyncing}},
		{in: "live/v1/" + digestA + "/2024-05-01T10:00:00Z/", want: DataStatus{State: DataLive, Version: "v1", Digest: digestA, Since: since}},
		{in: "failed/v1/" + digestA + "/2024-05-01T12:00:00+02:00/GET /v2: 404/x", want: DataStatus{State: DataFailed, Version: "v1", Digest: digestA, Since: since, Message: "GET /v2: 404/x"}},
		// Each "-" field stands alone: a version without a time is read.
		{in: "syncing/v1/-/-/x", want: DataStatus{State: DataSyncing, Version: "v1", Message: "x"}},
		{in: "syncing/-/" + digestA + "/-/", want: DataStatus{State: DataSyncing, Digest: digestA}},
		{in: "live/-/-/2024-05-01T10:00:00Z/", want: DataStatus{State: DataLive, Since: since}},
		{in: "live/-/-/-/" + strings.Repeat("m", 256), want: DataStatus{State: DataLive, Message: strings.Repeat("m", 256)}},
		{in: "live/-/-/-", err: `"live/-/-/-": want STATE/VERSION/DIGEST/SINCE/MESSAGE`},
		{in: "", err: `"": want STATE/VERSION/DIGEST/SINCE/MESSAGE`},
		{in: "done/-/-/-/", err: `state "done" is not one of syncing, live, failed`},
		{in: "Live/-/-/-/", err: `state "Live" is not one of syncing, live, failed`},
		{in: "live//-/-/", err: `version id "" must be 1 to 63 lower-case letters, digits, '.' or '-', starting with a letter or digit`},
		{in: "live/v1/sha256:0/-/", err: `digest "sha256:0" must be sha256: followed by 64 lower-case hex digits`},
		{in: "live/v1/-//", err: `since "" is not RFC 3339`},
		{in: "live/v1/-/now/", err: `since "now" is not RFC 3339`},
		{in: "live/v1/-/9999-12-31T23:00:00-01:00/", err: `since "9999-12-31T23:00:00-01:00" is out of range`},
		{in: "live/-/-/-/" + strings.Repeat("m", 257), err: "message is 257 bytes, more than 256"},
	}
	for _, tt := range tests {
		got, err := ParseDataStatus(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseDataStatus(%.60q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDataStatus(%.60q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseDataStatus(%.60q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// FuzzParseWaves checks that accepted waves format back to the same list,
// and that for any number of pods they grow, never pass the total, and end
// with every pod.
func FuzzParseWaves(f *testing.F) {
	for _, s := range []string{DefaultRolloutWaves, "100%", "1,2,3,100%", " 1 , 50% ,100% ", "2,1,100%", "10%,1,100%", "", ",", "1,,100%", "1000000,100%", "101%", strings.Repeat("1,", 30) + "100%"} {
		f.Add(s, uint16(4))
	}
	f.Add("1,10%,50%,100%", uint16(1))
	f.Add("5,10%,100%", uint16(1001))
	f.Fuzz(func(t *testing.T, v string, total uint16) {
		waves, err := ParseWaves(v, fuzzPath)
		if err != nil {
			checkError(t, err, fixedPathLen)
			return
		}
		if len(waves) == 0 || len(waves) > MaxWaves {
			t.Fatalf("ParseWaves(%q) = %d waves", v, len(waves))
		}
		parts := make([]string, len(waves))
		for i, w := range waves {
			if (w.Count > 0) == (w.Percent > 0) {
				t.Fatalf("wave %d of %q is %+v: want a count or a percentage", i, v, w)
			}
			parts[i] = w.String()
		}
		canonical := strings.Join(parts, ",")
		again, err := ParseWaves(canonical, fuzzPath)
		if err != nil || !cmp.Equal(waves, again) {
			t.Fatalf("ParseWaves(%q) = %q, which parses as %v, %v", v, canonical, again, err)
		}
		n := int(total%2000) + 1
		prev := 0
		for i, w := range waves {
			size := w.Size(n)
			if size < 1 || size > n || size < prev {
				t.Fatalf("wave %d (%s) of %q covers %d of %d pods after %d", i, w, v, size, n, prev)
			}
			prev = size
		}
		if prev != n {
			t.Fatalf("last wave of %q covers %d of %d pods", v, prev, n)
		}
	})
}

// FuzzParseDataRequest checks that an accepted request formats back to the
// exact value, and that its parts are valid on their own.
func FuzzParseDataRequest(f *testing.F) {
	f.Add("models/v1/" + digestA)
	f.Add("a/b/" + digestB)
	f.Add("models/v1/" + digestA + "/")
	f.Add("Models/V1/" + strings.ToUpper(digestA))
	f.Add("models//" + digestA)
	f.Add("models/v1\n/" + digestA)
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		r, err := ParseDataRequest(v)
		if err != nil {
			if n := len(err.Error()); n > 4*maxShown+512 {
				t.Errorf("error message is %d bytes", n)
			}
			return
		}
		if got := r.String(); got != v {
			t.Fatalf("ParseDataRequest(%q).String() = %q", v, got)
		}
		if err := ValidateVersionID(r.ID); err != nil {
			t.Fatalf("accepted version id: %v", err)
		}
		if err := ValidateDigest(r.Digest); err != nil {
			t.Fatalf("accepted digest: %v", err)
		}
		if r.Source == "" || strings.ContainsAny(r.Source+r.ID+r.Digest, "/ \n") {
			t.Fatalf("accepted parts %+v", r)
		}
	})
}

// FuzzParseDataStatus checks that an accepted status formats back into a
// value that parses to the same status, and that String is a fixed point.
func FuzzParseDataStatus(f *testing.F) {
	f.Add("syncing/-/-/-/")
	f.Add("live/v1/" + digestA + "/2024-05-01T10:00:00Z/")
	f.Add("failed/v1/" + digestA + "/2024-05-01T12:00:00.5+02:00/GET /v2:\n404 é")
	f.Add("live/-/-/0001-01-01T00:00:00Z/")
	f.Add("live/-/-/9999-12-31T23:59:59-23:59/")
	f.Add("live/--/-/-/")
	f.Add("live/-/-/-/" + strings.Repeat("a", 255) + " b")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseDataStatus(v)
		if err != nil {
			if n := len(err.Error()); n > 4*maxShown+256 {
				t.Errorf("error message is %d bytes", n)
			}
			return
		}
		out := s.String()
		back, err := ParseDataStatus(out)
		if err != nil {
			t.Fatalf("ParseDataStatus(%q) = %+v, whose String %q does not parse: %v", v, s, out, err)
		}
		want := s
		want.Since = s.Since.Truncate(time.Second)
		want.Message = SanitizeMessage(s.Message)
		if diff := cmp.Diff(want, back); diff != "" {
			t.Errorf("round trip of %q through %q (-want +got):\n%s", v, out, diff)
		}
		if again := back.String(); again != out {
			t.Errorf("String is not a fixed point: %q then %q", out, again)
		}
		if fields := strings.SplitN(out, "/", 5); len(fields) != 5 || fields[0] != string(s.State) {
			t.Errorf("String() = %q", out)
		}
	})
}
