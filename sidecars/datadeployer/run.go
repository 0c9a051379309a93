package datadeployer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

// Run is the datadeployer program: it serves the HTTP endpoints on
// opts.Listen, follows opts.AnnotationsFile, and keeps the deployments on
// their requests. In init mode it returns nil once every deployment holds
// its requested version, or an error after opts.InitTimeout. In the
// sidecar modes it returns when ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.AnnotationsFile == "" {
		return fmt.Errorf("%w: --annotations-file is required", ErrInvalidOptions)
	}
	d, err := New(opts)
	if err != nil {
		return err
	}
	defer d.Close()
	opts = d.opts
	log := d.log.WithValues("mode", opts.Mode)

	ln := opts.Listener
	if ln == nil && opts.Listen != "" {
		if ln, err = net.Listen("tcp", opts.Listen); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
	}()
	if ln != nil {
		wg.Go(func() {
			if err := d.serve(ctx, ln); err != nil {
				cancel(err)
			}
		})
	}
	watcher := podinfo.Watcher{Path: opts.AnnotationsFile, PollInterval: opts.AnnotationsPollInterval, OnChange: d.SetAnnotations, Log: log.WithName("podinfo")}
	wg.Go(func() {
		if err := watcher.Watch(ctx); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() { d.Run(ctx) })
	log.Info("started", "location", opts.Location, "deployments", opts.Deployments, "repository", spec.RedactURL(opts.RepositoryURL), "listen", listenAddr(ln))

	if opts.Mode == ModeInit {
		err := d.WaitSynced(ctx, opts.InitTimeout)
		if err == nil {
			log.Info("every deployment holds its requested version")
		}
		cancel(nil)
		if cause := context.Cause(ctx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

func listenAddr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}
