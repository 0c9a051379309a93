package testworkload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

// Run serves a new Server on ln until ctx ends, then shuts down gracefully:
// it stops accepting connections and lets requests in flight finish for up
// to opts.ShutdownTimeout. It closes ln.
func Run(ctx context.Context, ln net.Listener, opts Options) error {
	s, err := New(opts)
	if err != nil {
		_ = ln.Close()
		return err
	}
	timeout := opts.ShutdownTimeout
	if timeout == 0 {
		timeout = DefaultShutdownTimeout
	}
	return serve(ctx, ln, s.Handler(), timeout, opts.Log)
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration, log logr.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("serving", "address", ln.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), serveErr)
	}
	if err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	return nil
}
