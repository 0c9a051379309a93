package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/internal/envflag"
	"github.com/autocrane/autocrane/sidecars/testworkload"
)

const defaultListen = ":8080"

// config is what the command line asks for.
type config struct {
	listen string
	// files is the directory served at /files/, or empty.
	files string
	opts  testworkload.Options
	zap   zap.Options
}

// parseFlags reads args, with environment variables (through lookupEnv) as
// fallbacks for flags that are not given. Every error is a usage error.
func parseFlags(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	var cfg config
	fs, e := newFlags(&cfg, lookupEnv)
	if err := e.Parse(args); err != nil {
		return cfg, err
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
	if _, ok := lookupEnv(envflag.Name(envPrefix, "listen")); ok {
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

// envPrefix starts the environment variable of every flag: --listen falls
// back to $TESTWORKLOAD_LISTEN.
const envPrefix = "TESTWORKLOAD_"

// newFlags declares every flag into cfg. The flag set prints nothing: run
// prints the manual and the errors.
func newFlags(cfg *config, lookupEnv func(string) (string, bool)) (*flag.FlagSet, *envflag.Set) {
	fs := flag.NewFlagSet("testworkload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e := envflag.New(fs, envPrefix, lookupEnv)
	e.String(&cfg.listen, "listen", defaultListen, "")
	e.String(&cfg.opts.RedirectWatchdogTo, "redirect-watchdog-to", "", "")
	e.Int64(&cfg.opts.WatchdogBodyBytes, "watchdog-body-bytes", 0, "")
	e.String(&cfg.files, "serve-files", "", "")
	e.Duration(&cfg.opts.ShutdownTimeout, "shutdown-timeout", testworkload.DefaultShutdownTimeout, "")
	cfg.zap.BindFlags(fs)
	return fs, e
}
