package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// errUsage marks errors in the command line itself (exit code 2).
var errUsage = errors.New("usage error")

// envFlags declares flags whose default comes from an environment variable
// when it is set. Flags win: a misspelled flag is fatal, while a misspelled
// variable would be silently ignored. Bad values in the environment are
// reported like bad flags.
type envFlags struct {
	fs   *flag.FlagSet
	errs []error
}

func envName(flagName string) string {
	return "DATADEPLOYER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (e *envFlags) lookup(name string, parse func(string) error, what string) {
	v, ok := os.LookupEnv(envName(name))
	if !ok {
		return
	}
	if err := parse(v); err != nil {
		e.errs = append(e.errs, fmt.Errorf("$%s=%q: not %s: %w", envName(name), v, what, errUsage))
	}
}

func (e *envFlags) String(p *string, name, def, doc string) {
	e.lookup(name, func(v string) error { def = v; return nil }, "")
	e.fs.StringVar(p, name, def, doc+" ($"+envName(name)+")")
}

func (e *envFlags) Int(p *int, name string, def int, doc string) {
	e.lookup(name, func(v string) error {
		n, err := strconv.Atoi(v)
		def = n
		return err
	}, "a whole number")
	e.fs.IntVar(p, name, def, doc+" ($"+envName(name)+")")
}

func (e *envFlags) Duration(p *time.Duration, name string, def time.Duration, doc string) {
	e.lookup(name, func(v string) error {
		d, err := time.ParseDuration(v)
		def = d
		return err
	}, "a duration such as 30s or 5m")
	e.fs.DurationVar(p, name, def, doc+" ($"+envName(name)+")")
}

// Bytes declares a size flag that takes a Kubernetes quantity: 4Gi,
// 500Mi, 1000000.
func (e *envFlags) Bytes(p *int64, name string, def int64, doc string) {
	*p = def
	b := (*bytesValue)(p)
	e.lookup(name, b.Set, "a size such as 4Gi or 500Mi")
	e.fs.Var(b, name, doc+" ($"+envName(name)+")")
}

func (e *envFlags) err() error { return errors.Join(e.errs...) }

type bytesValue int64

func (b *bytesValue) String() string {
	return resource.NewQuantity(int64(*b), resource.BinarySI).String()
}

func (b *bytesValue) Set(v string) error {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return fmt.Errorf("%q is not a size such as 4Gi or 500Mi", v)
	}
	n, ok := q.AsInt64()
	if !ok || n < 1 {
		return fmt.Errorf("%q must be a whole number of bytes, at least 1", v)
	}
	*b = bytesValue(n)
	return nil
}
