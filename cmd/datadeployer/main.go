// Command datadeployer is AutoCrane's data deployer, injected into every
// pod that uses data: it keeps LOCATION/NAME on the version the controller
// requests. See docs/datadeployer.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/sidecars/datadeployer"
	"github.com/autocrane/autocrane/sidecars/datadeployer/archive"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the exit code: 0 on success (init: every deployment holds
// its requested version; sidecar: stopped by a signal), 1 when it failed,
// 2 for a usage error.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs, f, e := newFlags(stderr)
	err := e.Err()
	if err != nil {
		err = fmt.Errorf("%w: %w", err, errUsage)
	} else {
		err = fs.Parse(args)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			err = fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	var opts datadeployer.Options
	if err == nil {
		opts, err = f.options()
	}
	if err == nil {
		log := zap.New(zap.UseFlagOptions(&f.zap), zap.WriteTo(stderr))
		opts.Log = log
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		log.Info("datadeployer", "version", version)
		err = datadeployer.Run(ctx, opts)
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage), errors.Is(err, datadeployer.ErrInvalidOptions):
		fmt.Fprintf(stderr, "datadeployer: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "datadeployer: %v\n", err)
		return 1
	}
}

// options turns the flags into datadeployer.Options. Bad values are usage
// errors.
func (f *flags) options() (datadeployer.Options, error) {
	mode, err := datadeployer.ParseMode(f.mode)
	if err != nil {
		return datadeployer.Options{}, fmt.Errorf("%w: %w", err, errUsage)
	}
	names, err := datadeployer.ParseDeployments(f.deployments)
	if err != nil {
		return datadeployer.Options{}, fmt.Errorf("%w: %w", err, errUsage)
	}
	if f.maxEntries < 1 || f.maxDepth < 1 {
		return datadeployer.Options{}, fmt.Errorf("--max-entries and --max-depth must be at least 1: %w", errUsage)
	}
	return datadeployer.Options{
		Mode:                    mode,
		RepositoryURL:           f.repositoryURL,
		TokenFile:               f.tokenFile,
		Location:                f.location,
		Deployments:             names,
		AnnotationsFile:         f.annotationsFile,
		AnnotationsPollInterval: f.annotationsPoll,
		Listen:                  f.listen,
		Limits:                  archive.Limits{MaxBytes: f.maxBytes, MaxEntries: f.maxEntries, MaxDepth: f.maxDepth},
		InitTimeout:             f.initTimeout,
		RetryMin:                f.retryMin,
		RetryMax:                f.retryMax,
		DownloadIdleTimeout:     f.idleTimeout,
		WatchdogFailureGrace:    f.watchdogGrace,
		WatchdogFailureAttempts: f.watchdogAttempts,
		Notify: datadeployer.NotifyOptions{
			URL: f.notifyURL, Signal: f.notifySignal, PIDFile: f.notifyPIDFile, Process: f.notifyProcess, Timeout: f.notifyTimeout,
		},
	}, nil
}
