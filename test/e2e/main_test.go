//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// env is the suite's cluster, set once by TestMain before any test runs.
var env *suite

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// The tests' controller-runtime clients log nothing the tests read;
	// without a logger, controller-runtime prints a stack trace instead.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s, err := newSuite(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// go test has no teardown on Ctrl-C: tear the cluster down here, then
	// exit, so the machine is never left changed.
	var once sync.Once
	teardown := func() { once.Do(s.tearDown) }
	defer teardown()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		fmt.Fprintf(os.Stderr, "e2e: %v: tearing down\n", sig)
		teardown()
		os.Exit(1)
	}()

	start := time.Now()
	if err := s.setUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setting up:", err)
		s.dumpDiagnostics(context.Background(), "")
		return 1
	}
	s.logf("suite ready after %s", time.Since(start).Round(time.Second))
	env = s
	code := m.Run()
	if code != 0 {
		s.dumpDiagnostics(context.Background(), "")
	}
	return code
}

// repoRoot is the module root: the tests run in test/e2e.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod two levels above %s: %w", wd, err)
	}
	return root, nil
}
