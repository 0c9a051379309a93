package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/internal/envflag"
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
	if err := e.Parse(args); err != nil {
		return cfg, err
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

// envPrefix starts the environment variable of every flag: --listen falls
// back to $WATCHDOGHEALTHZ_LISTEN.
const envPrefix = "WATCHDOGHEALTHZ_"

// envName is the environment variable of a flag.
func envName(flagName string) string { return envflag.Name(envPrefix, flagName) }

// newFlags declares every flag. The flag set prints nothing: run prints the
// manual and the errors.
func newFlags(cfg *config, minReady *int, alwaysHealthy **int, lookupEnv func(string) (string, bool)) (*flag.FlagSet, *envflag.Set) {
	fs := flag.NewFlagSet("watchdoghealthz", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e := envflag.New(fs, envPrefix, lookupEnv)
	e.String(&cfg.opts.AnnotationsFile, "annotations-file", watchdoghealthz.DefaultAnnotationsFile, "")
	e.Int(minReady, minReadySecondsFlag, 0, "")
	e.Var(optionalSeconds{alwaysHealthy}, alwaysHealthyFlag, "")
	e.String(&cfg.listen, "listen", defaultListen, "")
	e.Duration(&cfg.opts.PollInterval, "poll-interval", podinfo.DefaultPollInterval, "")
	e.Duration(&cfg.opts.ShutdownTimeout, "shutdown-timeout", watchdoghealthz.DefaultShutdownTimeout, "")
	cfg.zap.BindFlags(fs)
	return fs, e
}

// optionalSeconds is a flag of whole seconds, 0 to MaxSeconds, that stays
// nil unless given.
type optionalSeconds struct{ p **int }

func (o optionalSeconds) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.Itoa(**o.p)
}

func (o optionalSeconds) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > watchdoghealthz.MaxSeconds {
		return fmt.Errorf("must be whole seconds from 0 to %d", watchdoghealthz.MaxSeconds)
	}
	*o.p = &n
	return nil
}
