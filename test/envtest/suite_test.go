package envtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/manager"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// ownNamespace stands in for AutoCrane's namespace, excluded from injection.
const ownNamespace = "autocrane-system"

// suite is shared by every test of this package: one control plane and one
// manager, started by TestMain. Tests isolate themselves with their own
// namespaces.
var suite struct {
	env     *framework.Env
	metrics *prometheus.Registry
	config  injector.Config
	// stopManager stops the shared manager (and its webhook server);
	// restartManager starts a new one. Tests that stop it restart it.
	stopManager func() error
	// writes counts the manager's API writes to pods, by namespace.
	writes *writeCounter
	// dials records every address the prober dialled.
	dials *dialRecorder
}

// policyDir holds AutoCrane's ValidatingAdmissionPolicies, installed as they
// ship.
const policyDir = "../../config/policy"

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	// TestMain has no testing.T, so it owns the root context.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := framework.Start(ctx, framework.Options{
		WebhookManifests:  []string{"../../config/webhook/manifests.yaml", "../../config/webhook/validating.yaml"},
		ControllerManager: true,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start control plane: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		}
	}()
	suite.env = env
	suite.config = injector.DefaultConfig()
	// The pods' datadeployers listen on this port at their pod's loopback
	// address: a free one, not the default, so two runs on one machine do
	// not collide.
	port, err := pickFreePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	suite.config.DataDeployerPort = int32(port)
	suite.writes = &writeCounter{}
	suite.dials = &dialRecorder{}

	if err := installPolicies(ctx, env); err != nil {
		fmt.Fprintf(os.Stderr, "install policies: %v\n", err)
		return 1
	}
	// AutoCrane's namespace holds the data rollout state, as installed.
	own := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace}}
	if err := env.Client.Create(ctx, own); err != nil && !apierrors.IsAlreadyExists(err) {
		fmt.Fprintf(os.Stderr, "create namespace %s: %v\n", ownNamespace, err)
		return 1
	}
	if err := restartManager(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "start manager: %v\n", err)
		return 1
	}
	code := m.Run()
	// The testworkload binary, built once for the tests that play the kubelet.
	if workloads.binary != "" {
		_ = os.RemoveAll(filepath.Dir(workloads.binary))
	}
	// The webhook server must stop before the control plane removes its
	// certificate directory.
	if suite.stopManager != nil {
		if err := suite.stopManager(); err != nil {
			fmt.Fprintf(os.Stderr, "stop manager: %v\n", err)
		}
	}
	return code
}

// restartManager starts the shared manager, with a fresh metrics registry
// (a registry refuses a second set of the same collectors).
func restartManager(ctx context.Context) error {
	suite.metrics = prometheus.NewRegistry()
	stop, err := startManager(ctx, suite.env, suite.metrics)
	if err != nil {
		return err
	}
	suite.stopManager = stop
	return nil
}

// installPolicies applies config/policy/ when it exists.
func installPolicies(ctx context.Context, env *framework.Env) error {
	if _, err := os.Stat(policyDir); os.IsNotExist(err) {
		return nil
	}
	if _, stderr, err := env.Kubectl(ctx, nil, "apply", "-k", policyDir); err != nil {
		return fmt.Errorf("%w: %s", err, stderr)
	}
	return nil
}

// startManager runs AutoCrane's manager, exactly as cmd/autocrane builds it,
// serving the webhook where envtest pointed the installed configurations.
func startManager(ctx context.Context, env *framework.Env, reg *prometheus.Registry) (stop func() error, err error) {
	wio := env.Environment.WebhookInstallOptions
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(suite.writes.wrap)
	mgr, err := manager.New(ctx, cfg, manager.Options{
		WebhookHost:            wio.LocalServingHost,
		WebhookPort:            wio.LocalServingPort,
		CertDir:                wio.LocalServingCertDir,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: "0",
		Namespace:              ownNamespace,
		Injector:               suite.config,
		MetricsRegistry:        reg,
		Logger:                 testLogger(),
		Controllers: manager.ControllerOptions{
			ProbeDial:          suite.dials.dial,
			EvictionsPerMinute: 600,
			EvictionBurst:      20,
			SkipNameValidation: true,
			DataPollInterval:   time.Second,
		},
	})
	if err != nil {
		return nil, err
	}
	// The manager outlives the test that (re)starts it: only stop ends it.
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("manager did not stop within 30s")
		}
	}
	addr := net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort))
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // readiness probe of our own loopback server
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("webhook server at %s not serving: %w", addr, err), stop())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, errors.Join(errors.New("manager cache did not sync"), stop())
	}
	return stop, nil
}

// testLogger discards logs unless AUTOCRANE_TEST_LOG=1.
func testLogger() logr.Logger {
	if os.Getenv("AUTOCRANE_TEST_LOG") != "1" {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
}
