package envtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autocrane/autocrane/manager"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestManagerServesHealthReadinessAndMetrics runs a second manager, built
// as cmd/autocrane builds it, and checks its probe and metrics endpoints.
func TestManagerServesHealthReadinessAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	probes, metrics, webhookAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(webhookAddr)
	var webhookPort int
	fmt.Sscan(port, &webhookPort)
	wio := suite.env.Environment.WebhookInstallOptions
	mgr, err := manager.New(ctx, suite.env.Config, manager.Options{
		WebhookHost:            "127.0.0.1",
		WebhookPort:            webhookPort,
		CertDir:                wio.LocalServingCertDir,
		MetricsBindAddress:     metrics,
		HealthProbeBindAddress: probes,
		Injector:               suite.config,
		MetricsRegistry:        prometheus.NewRegistry(),
		Logger:                 testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	get := func(url string) (int, string, error) {
		resp, err := http.Get(url) //nolint:noctx // loopback test server
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
			code, body, err := get("http://" + probes + path)
			if err != nil {
				return false, err
			}
			if code != http.StatusOK {
				return false, fmt.Errorf("%s: %d %s", path, code, body)
			}
			return true, nil
		})
	}
	code, body, err := get("http://" + probes + "/readyz?verbose")
	if err != nil || code != http.StatusOK {
		t.Fatalf("readyz?verbose: %d %v", code, err)
	}
	for _, check := range []string{"[+]webhook ok", "[+]namespace-cache ok"} {
		if !strings.Contains(body, check) {
			t.Errorf("readyz lacks %q:\n%s", check, body)
		}
	}
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		code, body, err := get("http://" + metrics + "/metrics")
		if err != nil {
			return false, err
		}
		return code == http.StatusOK && strings.Contains(body, "controller_runtime_webhook_requests_total"), nil
	})

}
