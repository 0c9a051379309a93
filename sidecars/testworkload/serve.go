package testworkload

import (
	"context"
	"net"

	"github.com/autocrane/autocrane/sidecars/httpserve"
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
	return httpserve.Serve(ctx, ln, s.Handler(), timeout, opts.Log)
}
