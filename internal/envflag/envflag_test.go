package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"
)

// env returns a lookup function over vars, as commands' tests inject.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// values holds one flag of each kind declared by declareAll.
type values struct {
	str   string
	num   int
	num64 int64
	on    bool
	share float64
	wait  time.Duration
	level level
}

// level is a command's own flag type, declared with Var: "low" or "high".
type level string

func (l *level) String() string { return string(*l) }

func (l *level) Set(v string) error {
	if v != "low" && v != "high" {
		return errors.New("must be low or high")
	}
	*l = level(v)
	return nil
}

func declareAll(lookupEnv func(string) (string, bool)) (*flag.FlagSet, *Set, *values) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := New(fs, "TEST_", lookupEnv)
	v := &values{level: "low"}
	s.String(&v.str, "str", "def", "a string")
	s.Int(&v.num, "num", 1, "an int")
	s.Int64(&v.num64, "num64", 2, "an int64")
	s.Bool(&v.on, "on", false, "a bool")
	s.Float64(&v.share, "share", 0.5, "a float64")
	s.Duration(&v.wait, "wait", time.Second, "a duration")
	s.Var(&v.level, "level", "a level")
	return fs, s, v
}

func defaults() values {
	return values{str: "def", num: 1, num64: 2, share: 0.5, wait: time.Second, level: "low"}
}

func TestSet(t *testing.T) {
	with := func(f func(*values)) values { v := defaults(); f(&v); return v }
	tests := map[string]struct {
		args    []string
		env     map[string]string
		want    values
		wantErr string
	}{
		"defaults": {want: defaults()},
		"environment": {
			env: map[string]string{"TEST_STR": "env", "TEST_NUM": "7", "TEST_NUM64": "-9000000000", "TEST_ON": "true",
				"TEST_SHARE": "0.25", "TEST_WAIT": "2m", "TEST_LEVEL": "high"},
			want: values{str: "env", num: 7, num64: -9000000000, on: true, share: 0.25, wait: 2 * time.Minute, level: "high"},
		},
		"an empty string variable is a value": {env: map[string]string{"TEST_STR": ""}, want: with(func(v *values) { v.str = "" })},
		"flags win over the environment": {
			args: []string{"--str=flag", "--num=3", "--num64=4", "--on=false", "--share=1", "--wait=3s", "--level=low"},
			env: map[string]string{"TEST_STR": "env", "TEST_NUM": "7", "TEST_NUM64": "8", "TEST_ON": "1",
				"TEST_SHARE": "0.25", "TEST_WAIT": "2m", "TEST_LEVEL": "high"},
			want: values{str: "flag", num: 3, num64: 4, share: 1, wait: 3 * time.Second, level: "low"},
		},
		"other variables are ignored": {env: map[string]string{"NUM": "5", "TEST_NUMBER": "x", "test_num": "6"}, want: defaults()},
		"bad int":                     {env: map[string]string{"TEST_NUM": "0x10"}, wantErr: `$TEST_NUM="0x10": not a whole number`},
		"int out of range":            {env: map[string]string{"TEST_NUM64": "9223372036854775808"}, wantErr: `$TEST_NUM64="9223372036854775808": not a whole number`},
		"bad bool":                    {env: map[string]string{"TEST_ON": "maybe"}, wantErr: `$TEST_ON="maybe": not true or false`},
		"bad float":                   {env: map[string]string{"TEST_SHARE": "half"}, wantErr: `$TEST_SHARE="half": not a number`},
		"bad duration":                {env: map[string]string{"TEST_WAIT": "10"}, wantErr: `$TEST_WAIT="10": not a duration such as 30s or 5m`},
		"bad custom value":            {env: map[string]string{"TEST_LEVEL": "mid"}, wantErr: `$TEST_LEVEL="mid": must be low or high`},
		"a bad variable is an error even when the flag is given": {
			args: []string{"--num=3"}, env: map[string]string{"TEST_NUM": "x"}, wantErr: `$TEST_NUM="x": not a whole number`,
		},
		"every bad variable, in declaration order": {
			env:     map[string]string{"TEST_LEVEL": "", "TEST_NUM": "one", "TEST_WAIT": "soon"},
			wantErr: "$TEST_NUM=\"one\": not a whole number\n$TEST_WAIT=\"soon\": not a duration such as 30s or 5m\n$TEST_LEVEL=\"\": must be low or high",
		},
		"bad variables, then the bad flag": {
			args: []string{"--num=x"}, env: map[string]string{"TEST_ON": "yes"},
			wantErr: "$TEST_ON=\"yes\": not true or false\ninvalid value \"x\" for flag -num: parse error",
		},
		"a bad flag alone":  {args: []string{"--nope"}, wantErr: "flag provided but not defined: -nope"},
		"values are quoted": {env: map[string]string{"TEST_NUM": "1\n"}, wantErr: `$TEST_NUM="1\n": not a whole number`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, s, got := declareAll(env(tc.env))
			err := s.Parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Parse = %v, want error %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tc.want {
				t.Errorf("values = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
	}{
		"help":                     {args: []string{"--help"}},
		"short help":               {args: []string{"-h"}},
		"help despite a bad value": {args: []string{"-h"}, env: map[string]string{"TEST_NUM": "x"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, s, _ := declareAll(env(tc.env))
			if err := s.Parse(tc.args); err != flag.ErrHelp {
				t.Fatalf("Parse = %v, want flag.ErrHelp alone", err)
			}
		})
	}
}

func TestErr(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		wantErr string
	}{
		"none":     {},
		"good":     {env: map[string]string{"TEST_NUM": "3"}},
		"one bad":  {env: map[string]string{"TEST_NUM": "x"}, wantErr: `$TEST_NUM="x": not a whole number`},
		"two bad":  {env: map[string]string{"TEST_NUM": "x", "TEST_ON": "y"}, wantErr: "$TEST_NUM=\"x\": not a whole number\n$TEST_ON=\"y\": not true or false"},
		"bad Var":  {env: map[string]string{"TEST_LEVEL": "x"}, wantErr: `$TEST_LEVEL="x": must be low or high`},
		"unparsed": {env: map[string]string{"TEST_WAIT": "x"}, wantErr: `$TEST_WAIT="x": not a duration such as 30s or 5m`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, s, _ := declareAll(env(tc.env))
			err := s.Err()
			if got := fmt.Sprint(err); (tc.wantErr == "" && err != nil) || (tc.wantErr != "" && got != tc.wantErr) {
				t.Fatalf("Err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestUsageAndDefaults checks what --help prints: the variable after each
// usage text, and the environment's value as the default.
func TestUsageAndDefaults(t *testing.T) {
	fs, _, _ := declareAll(env(map[string]string{"TEST_WAIT": "1m30s", "TEST_LEVEL": "high", "TEST_NUM": "bad"}))
	tests := map[string]struct{ wantUsage, wantDefault string }{
		"str":   {"a string ($TEST_STR)", "def"},
		"num":   {"an int ($TEST_NUM)", "1"},
		"num64": {"an int64 ($TEST_NUM64)", "2"},
		"on":    {"a bool ($TEST_ON)", "false"},
		"share": {"a float64 ($TEST_SHARE)", "0.5"},
		"wait":  {"a duration ($TEST_WAIT)", "1m30s"},
		"level": {"a level ($TEST_LEVEL)", "high"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := fs.Lookup(name)
			if f == nil {
				t.Fatalf("flag --%s not declared", name)
			}
			if f.Usage != tc.wantUsage || f.DefValue != tc.wantDefault {
				t.Errorf("usage %q, default %q; want %q, %q", f.Usage, f.DefValue, tc.wantUsage, tc.wantDefault)
			}
		})
	}
}

func TestName(t *testing.T) {
	tests := map[string]struct{ prefix, flag, want string }{
		"one word":        {"AUTOCRANE_", "namespace", "AUTOCRANE_NAMESPACE"},
		"dashes":          {"AUTOCRANE_", "webhook-cert-dir", "AUTOCRANE_WEBHOOK_CERT_DIR"},
		"digits":          {"DATADEPLOYER_", "max-bytes2", "DATADEPLOYER_MAX_BYTES2"},
		"no prefix":       {"", "listen", "LISTEN"},
		"already upper":   {"X_", "A-b", "X_A_B"},
		"underscore kept": {"X_", "a_b", "X_A_B"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Name(tc.prefix, tc.flag); got != tc.want {
				t.Errorf("Name(%q, %q) = %q, want %q", tc.prefix, tc.flag, got, tc.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	fs, s, _ := declareAll(env(nil))
	var direct bool
	fs.BoolVar(&direct, "zap-devel", false, "bound without the Set")
	tests := map[string]struct {
		flag    string
		want    string
		wantSet bool
	}{
		"declared":       {flag: "num64", want: "TEST_NUM64", wantSet: true},
		"declared Var":   {flag: "level", want: "TEST_LEVEL", wantSet: true},
		"bound directly": {flag: "zap-devel"},
		"unknown":        {flag: "nope"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := s.EnvName(tc.flag)
			if got != tc.want || ok != tc.wantSet {
				t.Errorf("EnvName(%q) = %q, %v; want %q, %v", tc.flag, got, ok, tc.want, tc.wantSet)
			}
		})
	}
}

// TestNilLookupReadsTheProcessEnvironment covers New's default.
func TestNilLookupReadsTheProcessEnvironment(t *testing.T) {
	t.Setenv("TEST_NUM", "42")
	_, s, v := declareAll(nil)
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if v.num != 42 {
		t.Errorf("num = %d, want 42 from $TEST_NUM", v.num)
	}
}

// fuzzKinds are the flags of declareAll with the parser each variable
// must go through, printing the result as the flag package does.
var fuzzKinds = []struct {
	flag, reason string
	parse        func(string) (string, error)
}{
	{"str", "", func(v string) (string, error) { return v, nil }},
	{"num", "not a whole number", func(v string) (string, error) { n, err := strconv.Atoi(v); return strconv.Itoa(n), err }},
	{"num64", "not a whole number", func(v string) (string, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		return strconv.FormatInt(n, 10), err
	}},
	{"on", "not true or false", func(v string) (string, error) { b, err := strconv.ParseBool(v); return strconv.FormatBool(b), err }},
	{"share", "not a number", func(v string) (string, error) {
		x, err := strconv.ParseFloat(v, 64)
		return strconv.FormatFloat(x, 'g', -1, 64), err
	}},
	{"wait", "not a duration such as 30s or 5m", func(v string) (string, error) { d, err := time.ParseDuration(v); return d.String(), err }},
	{"level", "must be low or high", func(v string) (string, error) { var l level; err := l.Set(v); return string(l), err }},
}

// FuzzEnvValue checks, for any value of the variables, that each flag takes
// exactly what the parser of its kind accepts, that everything else is
// reported in declaration order, and that the command line still wins.
func FuzzEnvValue(f *testing.F) {
	for _, seed := range []string{"", "0", "-1", "7", "0x10", "1e3", "NaN", "true", "F", "maybe", "90s", "1h2m3.5s",
		"10", "high", "9223372036854775808", " 1", "1\n", "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		vars := map[string]string{}
		for _, k := range fuzzKinds {
			vars[Name("TEST_", k.flag)] = v
		}
		fs, s, _ := declareAll(env(vars))
		var wantErrs []error
		for _, k := range fuzzKinds {
			want, err := k.parse(v)
			if err != nil {
				want = fs.Lookup(k.flag).DefValue
				wantErrs = append(wantErrs, fmt.Errorf("$%s=%q: %s", Name("TEST_", k.flag), v, k.reason))
			}
			if got := fs.Lookup(k.flag).Value.String(); got != want {
				t.Errorf("--%s = %q from %q, want %q", k.flag, got, v, want)
			}
		}
		if got, want := fmt.Sprint(s.Err()), fmt.Sprint(errors.Join(wantErrs...)); got != want {
			t.Fatalf("Err = %q, want %q", got, want)
		}
		_, s, got := declareAll(env(vars))
		_ = s.Parse([]string{"--str=f", "--num=3", "--num64=4", "--on=false", "--share=1", "--wait=3s", "--level=high"})
		if fixed := (values{str: "f", num: 3, num64: 4, share: 1, wait: 3 * time.Second, level: "high"}); *got != fixed {
			t.Fatalf("with flags, values = %+v, want %+v", *got, fixed)
		}
	})
}
