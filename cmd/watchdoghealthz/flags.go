package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/sidecars/watchdoghealthz"
)

// Defaults, as the injector passes them (checked by a test).
const (
	defaultListen       = ":9781"
	minPollInterval     = 10 * time.Millisecond
	maxPollInterval     = time.Hour
	alwaysHealthyFlag   = "always-healthy-after-seconds"
	minReadySecondsFlag = "min-ready-seconds"
)

// config is what the command line asks for.
type config struct {
	listen string
	opts   watchdoghealthz.Options
	zap    zap.Options
}

// parseFlags reads args, with environment variables (through lookupEnv) as
// fallbacks for flags that are not given. Every error is a usage error.
func parseFlags(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	var cfg config
	var minReady int
	var alwaysHealthy *int
	fs, e := newFlags(&cfg, &minReady, &alwaysHealthy, lookupEnv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errors.Join(append(e.errs, err)...)
	}
	if len(e.errs) > 0 {
		return cfg, errors.Join(e.errs...)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q: watchdoghealthz takes only flags", fs.Args())
	}
	var errs []error
	if cfg.opts.AnnotationsFile == "" {
		errs = append(errs, errors.New("--annotations-file: must not be empty"))
	}
	if minReady < 0 || minReady > watchdoghealthz.MaxSeconds {
		errs = append(errs, fmt.Errorf("--%s=%d: must be whole seconds from 0 to %d", minReadySecondsFlag, minReady, watchdoghealthz.MaxSeconds))
	}
	cfg.opts.Config.MinReady = time.Duration(minReady) * time.Second
	if alwaysHealthy != nil {
		a := time.Duration(*alwaysHealthy) * time.Second
		cfg.opts.Config.AlwaysHealthyAfter = &a
		if *alwaysHealthy < minReady {
			errs = append(errs, fmt.Errorf("--%s=%d: must not be less than --%s (%d), or the canary would never gate", alwaysHealthyFlag, *alwaysHealthy, minReadySecondsFlag, minReady))
		}
	}
	if _, port, err := net.SplitHostPort(cfg.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen=%q: want HOST:PORT or :PORT: %w", cfg.listen, err))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("--listen=%q: the port must be a number from 0 to 65535", cfg.listen))
	}
	if p := cfg.opts.PollInterval; p < minPollInterval || p > maxPollInterval {
		errs = append(errs, fmt.Errorf("--poll-interval=%s: must be from %s to %s", p, minPollInterval, maxPollInterval))
	}
	if cfg.opts.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout=%s: must be more than 0s", cfg.opts.ShutdownTimeout))
	}
	return cfg, errors.Join(errs...)
}

// newFlags declares every flag. The flag set prints nothing: run prints the
// manual and the errors.
func newFlags(cfg *config, minReady *int, alwaysHealthy **int, lookupEnv func(string) (string, bool)) (*flag.FlagSet, *envFlags) {
	fs := flag.NewFlagSet("watchdoghealthz", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e := &envFlags{fs: fs, lookupEnv: lookupEnv}
	e.String(&cfg.opts.AnnotationsFile, "annotations-file", watchdoghealthz.DefaultAnnotationsFile)
	e.Int(minReady, minReadySecondsFlag, 0)
	e.OptionalSeconds(alwaysHealthy, alwaysHealthyFlag)
	e.String(&cfg.listen, "listen", defaultListen)
	e.Duration(&cfg.opts.PollInterval, "poll-interval", podinfo.DefaultPollInterval)
	e.Duration(&cfg.opts.ShutdownTimeout, "shutdown-timeout", watchdoghealthz.DefaultShutdownTimeout)
	cfg.zap.BindFlags(fs)
	return fs, e
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "WATCHDOGHEALTHZ_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envFlags declares flags whose default comes from an environment variable
// when it is set. Flags win: a misspelled flag is fatal, while a misspelled
// variable would be silently ignored. Bad values in the environment are
// reported like bad flags.
type envFlags struct {
	fs        *flag.FlagSet
	lookupEnv func(string) (string, bool)
	errs      []error
}

func (e *envFlags) String(p *string, name, def string) {
	if v, ok := e.lookupEnv(envName(name)); ok {
		def = v
	}
	e.fs.StringVar(p, name, def, "")
}

func (e *envFlags) Int(p *int, name string, def int) {
	if v, ok := e.lookupEnv(envName(name)); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not a whole number", envName(name), v))
		} else {
			def = n
		}
	}
	e.fs.IntVar(p, name, def, "")
}

func (e *envFlags) Duration(p *time.Duration, name string, def time.Duration) {
	if v, ok := e.lookupEnv(envName(name)); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not a duration such as 5s", envName(name), v))
		} else {
			def = d
		}
	}
	e.fs.DurationVar(p, name, def, "")
}

// OptionalSeconds declares a flag of whole seconds, 0 to MaxSeconds, that
// is nil unless given.
func (e *envFlags) OptionalSeconds(p **int, name string) {
	set := func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > watchdoghealthz.MaxSeconds {
			return fmt.Errorf("must be whole seconds from 0 to %d", watchdoghealthz.MaxSeconds)
		}
		*p = &n
		return nil
	}
	if v, ok := e.lookupEnv(envName(name)); ok {
		if err := set(v); err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: %w", envName(name), v, err))
		}
	}
	e.fs.Func(name, "", set)
}
