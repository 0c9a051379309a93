package datadeployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/autocrane/autocrane/spec"
)

// WatchdogAnswer is the body of GET /watchdog.
type WatchdogAnswer struct {
	Level   spec.Level `json:"level"`
	Message string     `json:"message"`
}

// Handler serves the endpoints:
//
//	GET /status    Status as JSON
//	GET /watchdog  200 {"level":"info"|"warning",...}, 500 {"level":"error",...}
//	GET /readyz    200 once every deployment has held its request, else 503
//	GET /healthz   200 while the process serves
//	GET /metrics   Prometheus metrics
func (d *Deployer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("GET /watchdog", func(w http.ResponseWriter, _ *http.Request) {
		level, msg := d.Watchdog()
		code := http.StatusOK
		if level == spec.LevelError {
			code = http.StatusInternalServerError
		}
		writeJSON(w, code, WatchdogAnswer{Level: level, Message: msg})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if d.Ready() {
			writeText(w, http.StatusOK, "ok")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "waiting for the first sync: "+d.waitingFor())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.opts.Registry, promhttp.HandlerOpts{}))
	return mux
}

// waitingFor names the deployments that have not been live yet.
func (d *Deployer) waitingFor() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var names []string
	for _, dep := range d.deployments {
		if !dep.ready {
			names = append(names, dep.name)
		}
	}
	return strings.Join(names, ", ")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, s)
}

// serve runs the HTTP server on ln until ctx ends.
func (d *Deployer) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("stop serving: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}
