package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AssetsEnvVar names the environment variable holding the directory with the
// control-plane binaries.
const AssetsEnvVar = "KUBEBUILDER_ASSETS"

// Names of the binaries expected in the assets directory.
const (
	etcdBinary              = "etcd"
	apiServerBinary         = "kube-apiserver"
	controllerManagerBinary = "kube-controller-manager"
	kubectlBinary           = "kubectl"
)

// webhookHost is where envtest points the installed webhook configurations and
// where the test process must serve them. Loopback only: tests never listen on
// or call a routable address.
const webhookHost = "127.0.0.1"

// Options configures Start. The zero value starts an API server and etcd with
// no webhooks and no controller manager.
type Options struct {
	// WebhookManifests lists files (or directories of .yaml/.yml/.json files)
	// holding admissionregistration.k8s.io/v1 Mutating- or
	// ValidatingWebhookConfigurations to install. envtest sets every
	// clientConfig's caBundle and replaces a `service:` that has a path with
	// `url: https://<LocalServingHost>:<LocalServingPort>/<path>` (a double
	// slash, as paths start with one; the API server still requests <path>).
	// A `service:` without a path is left as is, hence unreachable. Everything
	// else (selectors, matchConditions, failurePolicy, ...) is kept. Serve the
	// webhooks with tls.crt and tls.key from
	// Env.Environment.WebhookInstallOptions.LocalServingCertDir. A missing
	// path is an error. Default: none.
	WebhookManifests []string

	// ControllerManager starts a kube-controller-manager (all default
	// controllers) against the API server, and Start returns only once it
	// works. Default: false; it adds a few seconds to Start.
	ControllerManager bool

	// Log receives the controller manager's stdout and stderr. Default: a file
	// named autocrane-kcm-*.log in os.TempDir(), exposed as
	// Env.ControllerManagerLogPath. Stop deletes it, except when the
	// controller manager failed: the error from Start or Stop then gives its
	// path (and quotes its end, as for a caller-supplied Log). Ignored when
	// ControllerManager is false.
	Log io.Writer

	// APIServerFlags sets extra kube-apiserver flags, keyed by flag name
	// without the leading dashes (e.g. "feature-gates"). A flag given here
	// replaces envtest's value for it. Default: none, i.e. envtest's flags.
	APIServerFlags map[string]string
}

// Env is a running control plane. Create it with Start and release it with
// Stop. Its methods are safe for concurrent use.
type Env struct {
	// Config connects to the API server as an admin (group system:masters).
	Config *rest.Config
	// Client is a controller-runtime client for Config that knows the
	// client-go built-in types.
	Client client.Client
	// Environment is the underlying envtest environment; read the webhook
	// serving address and certificates from its WebhookInstallOptions
	// (LocalServingHost, LocalServingPort, LocalServingCertDir).
	Environment *envtest.Environment
	// KubeconfigPath is an admin kubeconfig file, equivalent to Config.
	KubeconfigPath string
	// AssetsDir is the directory the binaries were taken from.
	AssetsDir string
	// ControllerManagerLogPath is the file receiving the controller manager's
	// output when Options.Log was nil; empty otherwise.
	ControllerManagerLogPath string

	// workDir holds kubeconfigs, the root CA, and kubectl's cache; Stop
	// removes it.
	workDir string
	kcm     *controllerManager
	// userMu serializes AddUser: envtest's user provisioning is not
	// documented as safe for concurrent use.
	userMu   sync.Mutex
	stopOnce sync.Once
	stopErr  error
}

// Start starts etcd, kube-apiserver and, if asked, kube-controller-manager,
// and installs opts.WebhookManifests. ctx bounds the start-up only; the
// processes run until Stop. On error, everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *Env, retErr error) {
	assets, err := assetsDir(opts.ControllerManager)
	if err != nil {
		return nil, err
	}
	workDir, err := os.MkdirTemp("", "autocrane-envtest-")
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	e := &Env{AssetsDir: assets, workDir: workDir}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, e.Stop())
		}
	}()

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	e.Environment = newEnvironment(assets, scheme, opts)
	cfg, err := e.Environment.Start()
	if err != nil {
		return nil, fmt.Errorf("start envtest control plane: %w", err)
	}
	e.Config = cfg
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	if e.KubeconfigPath, err = e.writeFile("admin.kubeconfig", e.Environment.KubeConfig); err != nil {
		return nil, err
	}

	if opts.ControllerManager {
		if err := e.startControllerManager(ctx, opts.Log); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// newEnvironment configures envtest explicitly rather than through its
// environment variables, so a stray USE_EXISTING_CLUSTER or TEST_ASSET_* in
// the developer's shell cannot point the tests at another cluster or binary.
func newEnvironment(assets string, scheme *runtime.Scheme, opts Options) *envtest.Environment {
	useExisting := false
	env := &envtest.Environment{
		Scheme:                scheme,
		UseExistingCluster:    &useExisting,
		BinaryAssetsDirectory: assets,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths:            opts.WebhookManifests,
			LocalServingHost: webhookHost,
		},
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(assets, etcdBinary)}
	apiServer := env.ControlPlane.GetAPIServer()
	apiServer.Path = filepath.Join(assets, apiServerBinary)
	env.ControlPlane.KubectlPath = filepath.Join(assets, kubectlBinary)
	for name, value := range opts.APIServerFlags {
		apiServer.Configure().Set(strings.TrimLeft(name, "-"), value)
	}
	return env
}

// assetsDir returns the directory named by KUBEBUILDER_ASSETS after checking
// that it holds the binaries this run needs, so a half-built or wrong
// directory fails here with a clear message instead of deep inside envtest.
func assetsDir(withControllerManager bool) (string, error) {
	dir := os.Getenv(AssetsEnvVar)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: run the integration tests with `make test`, "+
			"or `export %s=$(hack/envtest-assets.sh)` first", AssetsEnvVar, AssetsEnvVar)
	}
	need := []string{etcdBinary, apiServerBinary, kubectlBinary}
	if withControllerManager {
		need = append(need, controllerManagerBinary)
	}
	for _, name := range need {
		path := filepath.Join(dir, name)
		info, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%s=%s: missing %s (rebuild with hack/envtest-assets.sh): %w", AssetsEnvVar, dir, name, err)
		}
		if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return "", fmt.Errorf("%s=%s: %s is not an executable file", AssetsEnvVar, dir, path)
		}
	}
	return dir, nil
}

// Stop stops the controller manager, the API server and etcd, and removes the
// temporary files. Stop a webhook server served from
// Environment.WebhookInstallOptions.LocalServingCertDir before calling it:
// Stop deletes that directory. Calling Stop again returns the first result.
func (e *Env) Stop() error {
	e.stopOnce.Do(func() {
		var errs []error
		// The controller manager first: it would otherwise log connection
		// errors against the vanished API server while being torn down.
		if e.kcm != nil {
			if err := e.kcm.stop(); err != nil {
				errs = append(errs, err)
			}
		}
		if e.Environment != nil {
			if err := e.Environment.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop envtest control plane: %w", err))
			}
		}
		if err := os.RemoveAll(e.workDir); err != nil {
			errs = append(errs, fmt.Errorf("remove work dir: %w", err))
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// AddUser provisions a user authenticated by a client certificate, with the
// given name and groups and no impersonation involved; what it may do is up to
// the RBAC objects the test creates (or groups such as system:masters). It
// returns a REST config and the path of an equivalent kubeconfig for Kubectl
// style use (`kubectl --kubeconfig=<path>`).
func (e *Env) AddUser(name string, groups ...string) (*rest.Config, string, error) {
	e.userMu.Lock()
	defer e.userMu.Unlock()
	cfg, kubeconfig, err := e.addUser(name, groups...)
	if err != nil {
		return nil, "", fmt.Errorf("add user %q: %w", name, err)
	}
	path, err := e.writeFile(fileSafe(name)+".kubeconfig", kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("add user %q: %w", name, err)
	}
	return cfg, path, nil
}

func (e *Env) addUser(name string, groups ...string) (*rest.Config, []byte, error) {
	// Same client throttling as envtest's admin config: a test API server
	// does not need protecting, and client-side throttling only slows tests.
	base := &rest.Config{QPS: e.Config.QPS, Burst: e.Config.Burst}
	user, err := e.Environment.AddUser(envtest.User{Name: name, Groups: groups}, base)
	if err != nil {
		return nil, nil, err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	return user.Config(), kubeconfig, nil
}

// writeFile writes data to a new, uniquely named file in the work dir, so
// that two users with the same name do not overwrite each other's kubeconfig.
func (e *Env) writeFile(name string, data []byte) (string, error) {
	ext := filepath.Ext(name)
	f, err := os.CreateTemp(e.workDir, strings.TrimSuffix(name, ext)+"-*"+ext)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// fileSafe maps a user name such as "system:serviceaccount:ns:sa" to a string
// usable in a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		default:
			return '_'
		}
	}, s)
}
