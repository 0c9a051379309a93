// Command testworkload is a small HTTP service whose watchdog endpoint can be
// switched between healthy, warning and failing at run time, for tests, the
// demo and trials of AutoCrane. Run "testworkload --help" for its manual.
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

	"github.com/autocrane/autocrane/sidecars/testworkload"
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
		fmt.Fprintf(stderr, "testworkload: %v\nRun \"testworkload --help\" for the flags.\n", err)
		return 2
	}
	log := zap.New(zap.UseFlagOptions(&cfg.zap), zap.WriteTo(stderr))
	log.Info("starting", "version", version, "listen", cfg.listen,
		"redirectWatchdogTo", cfg.opts.RedirectWatchdogTo, "watchdogBodyBytes", cfg.opts.WatchdogBodyBytes,
		"shutdownTimeout", cfg.opts.ShutdownTimeout.String(), "serveFiles", cfg.files)
	cfg.opts.Log = log
	if cfg.files != "" {
		// os.Root: a symbolic link in the served tree cannot lead outside it.
		root, err := os.OpenRoot(cfg.files)
		if err != nil {
			log.Error(err, "cannot serve files", "directory", cfg.files)
			return 1
		}
		defer root.Close()
		cfg.opts.Files = root.FS()
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		log.Error(err, "cannot listen", "address", cfg.listen)
		return 1
	}
	if err := testworkload.Run(ctx, ln, cfg.opts); err != nil {
		log.Error(err, "stopped")
		return 1
	}
	log.Info("stopped")
	return 0
}
