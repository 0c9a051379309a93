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

	"github.com/autocrane/autocrane/sidecars/testworkload"
)

const defaultListen = ":8080"

// config is what the command line asks for.
type config struct {
	listen string
	opts   testworkload.Options
	zap    zap.Options
}

// parseFlags reads args, with environment variables (through lookupEnv) as
// fallbacks for flags that are not given. Every error is a usage error.
func parseFlags(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	var cfg config
	fs, e := newFlags(&cfg, lookupEnv)
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
		return cfg, fmt.Errorf("unexpected arguments %q: testworkload takes only flags", fs.Args())
	}
	if err := listenFromPort(fs, lookupEnv, &cfg.listen); err != nil {
		return cfg, err
	}
	if _, port, err := net.SplitHostPort(cfg.listen); err != nil {
		return cfg, fmt.Errorf("--listen=%q: want HOST:PORT or :PORT: %w", cfg.listen, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return cfg, fmt.Errorf("--listen=%q: the port must be a number from 0 to 65535", cfg.listen)
	}
	if cfg.opts.ShutdownTimeout <= 0 {
		return cfg, fmt.Errorf("--shutdown-timeout=%s: must be more than 0s", cfg.opts.ShutdownTimeout)
	}
	if err := cfg.opts.Validate(); err != nil {
		return cfg, fmt.Errorf("--redirect-watchdog-to, --watchdog-body-bytes: %w", err)
	}
	return cfg, nil
}

// listenFromPort applies $PORT, the convention of many platforms, when
// neither --listen nor $TESTWORKLOAD_LISTEN says where to listen.
func listenFromPort(fs *flag.FlagSet, lookupEnv func(string) (string, bool), listen *string) error {
	if _, ok := lookupEnv("TESTWORKLOAD_LISTEN"); ok {
		return nil
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "listen" })
	v, ok := lookupEnv("PORT")
	if given || !ok {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 || strings.HasPrefix(v, "+") {
		return fmt.Errorf("$PORT=%q: want a port number from 1 to 65535", v)
	}
	*listen = ":" + v
	return nil
}

// newFlags declares every flag into cfg. The flag set prints nothing: run
// prints the manual and the errors.
func newFlags(cfg *config, lookupEnv func(string) (string, bool)) (*flag.FlagSet, *envFlags) {
	fs := flag.NewFlagSet("testworkload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e := &envFlags{fs: fs, lookupEnv: lookupEnv}
	e.String(&cfg.listen, "listen", "TESTWORKLOAD_LISTEN", defaultListen)
	e.String(&cfg.opts.RedirectWatchdogTo, "redirect-watchdog-to", "TESTWORKLOAD_REDIRECT_WATCHDOG_TO", "")
	e.Int64(&cfg.opts.WatchdogBodyBytes, "watchdog-body-bytes", "TESTWORKLOAD_WATCHDOG_BODY_BYTES", 0)
	e.Duration(&cfg.opts.ShutdownTimeout, "shutdown-timeout", "TESTWORKLOAD_SHUTDOWN_TIMEOUT", testworkload.DefaultShutdownTimeout)
	cfg.zap.BindFlags(fs)
	return fs, e
}

// envFlags declares flags whose default comes from an environment variable
// when it is set. Flags win: a misspelled flag is fatal, while a misspelled
// variable would be silently ignored. Bad values in the environment are
// reported like bad flags.
type envFlags struct {
	fs        *flag.FlagSet
	lookupEnv func(string) (string, bool)
	errs      []error
	// envs maps each flag to its variable, for the manual's test.
	envs map[string]string
}

func (e *envFlags) lookup(name, env string) (string, bool) {
	if e.envs == nil {
		e.envs = map[string]string{}
	}
	e.envs[name] = env
	return e.lookupEnv(env)
}

func (e *envFlags) String(p *string, name, env, def string) {
	if v, ok := e.lookup(name, env); ok {
		def = v
	}
	e.fs.StringVar(p, name, def, "")
}

func (e *envFlags) Int64(p *int64, name, env string, def int64) {
	if v, ok := e.lookup(name, env); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not a whole number", env, v))
		} else {
			def = n
		}
	}
	e.fs.Int64Var(p, name, def, "")
}

func (e *envFlags) Duration(p *time.Duration, name, env string, def time.Duration) {
	if v, ok := e.lookup(name, env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("$%s=%q: not a duration such as 10s", env, v))
		} else {
			def = d
		}
	}
	e.fs.DurationVar(p, name, def, "")
}
