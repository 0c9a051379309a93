// Command watchdoghealthz is AutoCrane's canary sidecar: its /healthz
// answers the pod's readiness probe with 200 only once the pod's watchdogs
// have been error-free for --min-ready-seconds. Run "watchdoghealthz --help"
// for its manual.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/sidecars/watchdoghealthz"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the exit code: 0 after a clean shutdown or --help, 1 when
// serving failed, 2 for a usage error.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, lookupEnv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, manual())
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "watchdoghealthz: %v\nRun \"watchdoghealthz --help\" for the flags.\n", err)
		return 2
	}
	log := zap.New(zap.UseFlagOptions(&cfg.zap), zap.WriteTo(stderr))
	kv := []any{"version", version, "listen", cfg.listen, "annotationsFile", cfg.opts.AnnotationsFile,
		"minReady", cfg.opts.Config.MinReady.String(), "pollInterval", cfg.opts.PollInterval.String(),
		"shutdownTimeout", cfg.opts.ShutdownTimeout.String()}
	if a := cfg.opts.Config.AlwaysHealthyAfter; a != nil {
		kv = append(kv, "alwaysHealthyAfter", a.String())
	}
	log.Info("starting", kv...)
	cfg.opts.Log = log
	s, err := watchdoghealthz.New(cfg.opts)
	if err != nil {
		log.Error(err, "bad options")
		return 2
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		log.Error(err, "cannot listen", "address", cfg.listen)
		return 1
	}
	if err := s.Run(ctx, ln); err != nil {
		log.Error(err, "stopped")
		return 1
	}
	log.Info("stopped")
	return 0
}
