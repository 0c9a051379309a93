package envflag

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Why each kind of value was refused; the error reads `$NAME="value": reason`.
const (
	reasonWholeNumber = "not a whole number"
	reasonBool        = "not true or false"
	reasonNumber      = "not a number"
	reasonDuration    = "not a duration such as 30s or 5m"
)

// Set declares flags on a flag.FlagSet with environment fallbacks. Create
// it with New; it is not safe for concurrent use, like flag.FlagSet.
type Set struct {
	fs        *flag.FlagSet
	prefix    string
	lookupEnv func(string) (string, bool)
	errs      []error
	// envs maps each flag declared through the Set to its variable.
	envs map[string]string
}

// New returns a Set that declares flags on fs, each with the environment
// variable Name(prefix, flag). lookupEnv reads the environment; nil means
// os.LookupEnv (tests pass a map's lookup instead).
func New(fs *flag.FlagSet, prefix string, lookupEnv func(string) (string, bool)) *Set {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	return &Set{fs: fs, prefix: prefix, lookupEnv: lookupEnv, envs: map[string]string{}}
}

// Name is the environment variable of a flag: the prefix, then the flag's
// name in upper case with dashes as underscores ("AUTOCRANE_",
// "webhook-port": "AUTOCRANE_WEBHOOK_PORT").
func Name(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// EnvName returns the environment variable of a flag declared through s,
// and false for any other flag of the flag set (such as logging flags bound
// directly).
func (s *Set) EnvName(flagName string) (string, bool) {
	env, ok := s.envs[flagName]
	return env, ok
}

// String declares a string flag; the variable, when set, is the default,
// even when empty.
func (s *Set) String(p *string, name, def, usage string) {
	def = fromEnv(s, name, def, func(v string) (string, error) { return v, nil }, "")
	s.fs.StringVar(p, name, def, s.usage(name, usage))
}

// Int declares an int flag; the variable must be a decimal whole number.
func (s *Set) Int(p *int, name string, def int, usage string) {
	def = fromEnv(s, name, def, strconv.Atoi, reasonWholeNumber)
	s.fs.IntVar(p, name, def, s.usage(name, usage))
}

// Int64 declares an int64 flag; the variable must be a decimal whole
// number.
func (s *Set) Int64(p *int64, name string, def int64, usage string) {
	parse := func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }
	def = fromEnv(s, name, def, parse, reasonWholeNumber)
	s.fs.Int64Var(p, name, def, s.usage(name, usage))
}

// Bool declares a bool flag; the variable takes what strconv.ParseBool
// does (true, false, 1, 0, t, f, ...).
func (s *Set) Bool(p *bool, name string, def bool, usage string) {
	def = fromEnv(s, name, def, strconv.ParseBool, reasonBool)
	s.fs.BoolVar(p, name, def, s.usage(name, usage))
}

// Float64 declares a float64 flag.
func (s *Set) Float64(p *float64, name string, def float64, usage string) {
	parse := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	def = fromEnv(s, name, def, parse, reasonNumber)
	s.fs.Float64Var(p, name, def, s.usage(name, usage))
}

// Duration declares a time.Duration flag in Go's syntax (90s, 10m, 2160h).
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	def = fromEnv(s, name, def, time.ParseDuration, reasonDuration)
	s.fs.DurationVar(p, name, def, s.usage(name, usage))
}

// Var declares a flag of a command's own type. value holds the default;
// the variable, when set, goes through value.Set, whose error is the
// reason reported.
func (s *Set) Var(value flag.Value, name, usage string) {
	if v, ok := s.lookup(name); ok {
		if err := value.Set(v); err != nil {
			s.errs = append(s.errs, fmt.Errorf("$%s=%q: %w", s.envs[name], v, err))
		}
	}
	s.fs.Var(value, name, s.usage(name, usage))
}

// Err returns the bad values found in the environment so far, joined, or
// nil.
func (s *Set) Err() error { return errors.Join(s.errs...) }

// Parse parses args with the flag set (which should use
// flag.ContinueOnError). It returns flag.ErrHelp alone when help was asked
// for, whatever the environment holds; otherwise the environment's errors
// and the flag set's, joined, or nil.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errors.Join(append(slices.Clone(s.errs), err)...)
	}
	return s.Err()
}

// lookup records the flag's variable and reads it.
func (s *Set) lookup(name string) (string, bool) {
	env := Name(s.prefix, name)
	s.envs[name] = env
	return s.lookupEnv(env)
}

// usage appends the variable to a flag's usage text.
func (s *Set) usage(name, usage string) string {
	return usage + " ($" + Name(s.prefix, name) + ")"
}

// fromEnv returns the flag's default: the variable's value when it is set
// and parses, def otherwise. A value that does not parse is recorded with
// reason.
func fromEnv[T any](s *Set, name string, def T, parse func(string) (T, error), reason string) T {
	v, ok := s.lookup(name)
	if !ok {
		return def
	}
	parsed, err := parse(v)
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("$%s=%q: %s", s.envs[name], v, reason))
		return def
	}
	return parsed
}
