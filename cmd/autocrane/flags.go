package main

import (
	"errors"
	"flag"
	"fmt"
	"github.com/autocrane/autocrane/cli"
	"os"
	"strconv"
	"strings"
)

// errUsage marks errors in the command line itself; it is the CLI's, so
// every subcommand's usage errors exit 2.
var errUsage = cli.ErrUsage

func isUsage(err error) bool { return errors.Is(err, errUsage) }
func isHelp(err error) bool  { return errors.Is(err, flag.ErrHelp) }

// envFlags declares flags whose default comes from an environment variable
// when it is set. Flags win: a misspelled flag is fatal, while a misspelled
// variable would be silently ignored. Bad values in the environment are
// reported like bad flags.
type envFlags struct {
	fs   *flag.FlagSet
	errs []error
}

func envName(flagName string) string {
	return "AUTOCRANE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (e *envFlags) String(p *string, name, def, doc string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	e.fs.StringVar(p, name, def, doc+" ($"+envName(name)+")")
}

func (e *envFlags) Int(p *int, name string, def int, doc string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not a whole number: %w", envName(name), v, errUsage))
		} else {
			def = n
		}
	}
	e.fs.IntVar(p, name, def, doc+" ($"+envName(name)+")")
}

func (e *envFlags) Bool(p *bool, name string, def bool, doc string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not true or false: %w", envName(name), v, errUsage))
		} else {
			def = b
		}
	}
	e.fs.BoolVar(p, name, def, doc+" ($"+envName(name)+")")
}

func (e *envFlags) Float64(p *float64, name string, def float64, doc string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not a number: %w", envName(name), v, errUsage))
		} else {
			def = f
		}
	}
	e.fs.Float64Var(p, name, def, doc+" ($"+envName(name)+")")
}

func (e *envFlags) err() error { return errors.Join(e.errs...) }
