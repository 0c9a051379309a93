//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Environment variables the suite reads (docs/cluster.md).
const (
	// envKubeconfig names an existing cluster to test; then the suite
	// neither starts nor stops one.
	envKubeconfig = "E2E_KUBECONFIG"
	// envKeepCluster=true leaves the cluster the suite started running.
	envKeepCluster = "E2E_KEEP_CLUSTER"
	// envSkipImages=true skips building and loading the images.
	envSkipImages = "E2E_SKIP_IMAGES"
	// envClusterDir is hack/cluster's work directory.
	envClusterDir = "AUTOCRANE_CLUSTER_DIR"
	// envConfig is the kustomization to install AutoCrane with.
	envConfig = "E2E_CONFIG"
)

// Images the tests run. The product image comes from `make images`; the
// test image adds fsprobe, a tool to look at the data from inside a pod.
const (
	productImage = "autocrane:dev"
	testImage    = "autocrane-e2e:dev"
	// autocraneNamespace is where config/e2e installs AutoCrane.
	autocraneNamespace = "autocrane-system"
)

// suite is the cluster the tests run against.
type suite struct {
	repo       string
	clusterDir string
	// config is the kustomization installed, default config/e2e.
	config     string
	kubeconfig string
	kubectlBin string
	// managed is set when the suite starts (and so stops) the cluster.
	managed bool
	cs      kubernetes.Interface
	dyn     dynamic.Interface
	rest    *rest.Config
}

func newSuite(ctx context.Context) (*suite, error) {
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	s := &suite{repo: repo, clusterDir: os.Getenv(envClusterDir), config: os.Getenv(envConfig)}
	if s.config == "" {
		s.config = "config/e2e"
	}
	if s.clusterDir == "" {
		s.clusterDir = "/tmp/autocrane-cluster"
	}
	s.kubeconfig = os.Getenv(envKubeconfig)
	s.managed = s.kubeconfig == ""
	if s.managed {
		s.kubeconfig = filepath.Join(s.clusterDir, "kubeconfig")
	}
	return s, nil
}

func (s *suite) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}

// setUp builds the images, starts (or joins) the cluster and installs
// AutoCrane.
func (s *suite) setUp(ctx context.Context) error {
	assets, err := s.output(ctx, "hack/envtest-assets.sh")
	if err != nil {
		return err
	}
	s.kubectlBin = filepath.Join(strings.TrimSpace(assets), "kubectl")
	if os.Getenv(envSkipImages) != "true" {
		if err := s.buildImages(ctx); err != nil {
			return err
		}
	}
	if s.managed {
		// A run killed before its teardown (a go test -timeout, say) left
		// its journal; cluster-down removes exactly what it records.
		if err := s.stream(ctx, "hack/cluster-down"); err != nil {
			return err
		}
		if err := s.stream(ctx, "hack/cluster-up"); err != nil {
			return err
		}
	} else if s.kubeconfig == filepath.Join(s.clusterDir, "kubeconfig") && os.Getenv(envSkipImages) != "true" {
		// A cluster hack/cluster-up started earlier: give it the new images.
		if err := s.stream(ctx, "go", "run", "./hack/cluster", "load"); err != nil {
			return err
		}
	}
	if err := s.connect(); err != nil {
		return err
	}
	return s.installAutoCrane(ctx)
}

func (s *suite) tearDown() {
	if !s.managed {
		return
	}
	if os.Getenv(envKeepCluster) == "true" {
		s.logf("leaving the cluster running (%s=true); hack/cluster-down removes it; KUBECONFIG=%s", envKeepCluster, s.kubeconfig)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := s.stream(ctx, "hack/cluster-down"); err != nil {
		s.logf("teardown failed: %v; run hack/cluster-down", err)
	}
}

// buildImages writes the product image and the test image into
// _output/images, where hack/cluster-up and hack/cluster load find them.
func (s *suite) buildImages(ctx context.Context) error {
	if err := s.stream(ctx, "go", "run", "./hack/imagebuild"); err != nil {
		return err
	}
	return s.stream(ctx, "go", "run", "./hack/imagebuild",
		"--packages", "./cmd/... ./test/e2e/fsprobe", "--tag", testImage, "--pause-tag", "")
}

func (s *suite) connect() error {
	rc, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.kubeconfig, err)
	}
	rc.QPS, rc.Burst = 50, 100
	s.rest = rc
	if s.cs, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	s.dyn, err = dynamic.NewForConfig(rc)
	return err
}

// stream runs a command in the repository with its output on stderr.
func (s *suite) stream(ctx context.Context, name string, args ...string) error {
	s.logf("$ %s %s", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// output runs a command in the repository and returns its stdout.
func (s *suite) output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.repo
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// kubectl runs kubectl against the suite's cluster, with stdin when given.
func (s *suite) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.kubectlBin, append([]string{"--kubeconfig", s.kubeconfig}, args...)...)
	cmd.Dir = s.repo
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// dumpDiagnostics prints what helps read a failure: the pods (of ns, or of
// every namespace), recent events, and the manager's logs.
func (s *suite) dumpDiagnostics(ctx context.Context, ns string) {
	if s.kubectlBin == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	scope := []string{"--all-namespaces"}
	if ns != "" {
		scope = []string{"--namespace", ns}
	}
	for _, args := range [][]string{
		append([]string{"get", "pods", "-o", "wide"}, scope...),
		append([]string{"get", "events", "--sort-by=.lastTimestamp"}, scope...),
		append([]string{"describe", "pods"}, scope...),
	} {
		out, err := s.kubectl(ctx, "", args...)
		s.logf("--- kubectl %s\n%s%v", strings.Join(args, " "), out, errOrEmpty(err))
	}
	if ns == "" {
		out, err := s.kubectl(ctx, "", "logs", "--namespace", autocraneNamespace, "--selector", "app.kubernetes.io/component=manager", "--tail", "50", "--all-containers", "--prefix")
		s.logf("--- manager logs\n%s%v", out, errOrEmpty(err))
		if s.managed {
			s.logf("--- the cluster's component logs stay in %s", filepath.Join(s.clusterDir, "logs"))
		}
	}
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

// poll calls check every interval until it returns nil or the timeout
// passes; the error then carries the last answer of a check that was not
// cut short by the timeout itself.
func poll(ctx context.Context, timeout, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, errStop) {
			return err
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, last)
		case <-time.After(interval):
		}
	}
}
