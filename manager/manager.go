package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/webhook"
)

// SidecarModeAuto picks native sidecars on API servers 1.29 and newer.
const SidecarModeAuto = "auto"

// Options configure the manager. Each field says what its zero value means.
type Options struct {
	// WebhookHost and WebhookPort are where the webhook server listens.
	// Empty host: all addresses. Zero port: 9443.
	WebhookHost string
	WebhookPort int
	// CertDir holds tls.crt and tls.key for the webhook server, reloaded
	// when they change. Empty: controller-runtime's default,
	// <temp dir>/k8s-webhook-server/serving-certs.
	CertDir string
	// MetricsBindAddress serves Prometheus metrics; "0" turns it off.
	// Empty: ":8080".
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz; "0" turns it off.
	// Empty: ":8081".
	HealthProbeBindAddress string
	// LeaderElection makes replicas elect one leader for the controllers;
	// webhooks are served by every replica. Off when false.
	LeaderElection bool
	// LeaderElectionNamespace holds the lease. Empty: Namespace.
	LeaderElectionNamespace string
	// Namespace is AutoCrane's own namespace; its pods are never injected.
	// Empty: nothing extra is excluded.
	Namespace string
	// SidecarMode is native, classic or auto. Empty: auto.
	SidecarMode string
	// Injector configures what is injected. Its SidecarMode is set from
	// SidecarMode.
	Injector injector.Config
	// --- webhook certificates (manager/certs.go) ---
	// CertMode is where the webhook's certificate comes from:
	// CertModeCertManager (tls.crt and tls.key in CertDir) or
	// CertModeSelfManaged (a Secret kept by the leader). Empty: cert-manager.
	CertMode string
	// SelfManagedCerts configures CertModeSelfManaged.
	SelfManagedCerts SelfManagedCerts
	// --- end webhook certificates ---
	// MetricsRegistry receives AutoCrane's own metrics. Nil: controller-
	// runtime's registry, which the metrics endpoint serves.
	MetricsRegistry prometheus.Registerer
	// Logger is the manager's logger. Zero: discard.
	Logger logr.Logger
	// Controllers configures the watchdog prober and eviction.
	Controllers ControllerOptions
	// serverVersion is a seam for tests; nil asks the API server.
	serverVersion func(*rest.Config) (major, minor int, err error)
}

// New builds the manager with the mutating webhook registered. It asks the
// API server its version once, to pick the default sidecar mode.
func New(ctx context.Context, cfg *rest.Config, opts Options) (ctrl.Manager, error) {
	log := opts.Logger
	mode, err := resolveSidecarMode(cfg, opts)
	if err != nil {
		return nil, err
	}
	injCfg := opts.Injector
	injCfg.SidecarMode = mode
	if err := injCfg.Validate(); err != nil {
		return nil, fmt.Errorf("injector config: %w", err)
	}
	log.Info("sidecar mode decided", "mode", mode, "requested", opts.SidecarMode)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	certSetup, err := newCertSetup(opts) // webhook certificates (manager/certs.go)
	if err != nil {
		return nil, err
	}
	leNamespace := opts.LeaderElectionNamespace
	if leNamespace == "" {
		leNamespace = opts.Namespace
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Logger: log,
		Metrics: metricsserver.Options{
			BindAddress: defaultString(opts.MetricsBindAddress, ":8080"),
		},
		HealthProbeBindAddress:  defaultString(opts.HealthProbeBindAddress, ":8081"),
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        "autocrane-manager.autocrane.io",
		LeaderElectionNamespace: leNamespace,
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host:    opts.WebhookHost,
			Port:    opts.WebhookPort,
			CertDir: opts.CertDir,
			TLSOpts: []func(*tls.Config){certSetup.tlsOption}, // webhook certificates
		}),
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			// Every pod in the cluster is cached for the controllers; keep
			// only what they read.
			// certSetup adds the webhook certificate's Secret and configurations.
			ByObject: certSetup.withCacheByObject(map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: controller.TrimPod}}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}

	// Namespaces are read from a metadata-only informer, started with the
	// manager, so admission never calls the API server.
	nsInformer, err := mgr.GetCache().GetInformer(ctx, namespaceMeta())
	if err != nil {
		return nil, fmt.Errorf("watch namespaces: %w", err)
	}

	excluded := spec.SystemNamespaces()
	if opts.Namespace != "" {
		excluded = append(excluded, opts.Namespace)
	}
	reg := opts.MetricsRegistry
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	if err := certSetup.addTo(ctx, mgr, reg, log); err != nil { // webhook certificates
		return nil, err
	}
	ctrls, err := addControllers(ctx, mgr, opts, reg)
	if err != nil {
		return nil, err
	}
	handlerOpts := webhook.Options{
		Namespaces:         mgr.GetCache(),
		LiveNamespaces:     mgr.GetAPIReader(),
		Config:             injCfg,
		ExcludedNamespaces: excluded,
		Registerer:         reg,
		InitialRequests:    ctrls.initialRequests(),
	}
	mutator, err := webhook.NewPodMutator(handlerOpts)
	if err != nil {
		return nil, fmt.Errorf("create pod mutator: %w", err)
	}
	validator, err := webhook.NewValidator(handlerOpts)
	if err != nil {
		return nil, fmt.Errorf("create validator: %w", err)
	}
	for path, h := range map[string]admission.Handler{webhook.MutatePodPath: mutator, webhook.ValidatePath: validator} {
		mgr.GetWebhookServer().Register(path, &admission.Webhook{Handler: h, RecoverPanic: ptr.To(true)})
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, fmt.Errorf("add readyz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("namespace-cache", func(*http.Request) error {
		if !nsInformer.HasSynced() {
			return errors.New("namespace cache not synced yet")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("add readyz check: %w", err)
	}
	return mgr, nil
}

func namespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}

func defaultString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// resolveSidecarMode turns auto into native or classic.
func resolveSidecarMode(cfg *rest.Config, opts Options) (spec.SidecarMode, error) {
	switch opts.SidecarMode {
	case string(spec.SidecarNative), string(spec.SidecarClassic):
		return spec.SidecarMode(opts.SidecarMode), nil
	case "", SidecarModeAuto:
	default:
		return "", fmt.Errorf("sidecar mode %q: must be auto, native or classic", opts.SidecarMode)
	}
	version := opts.serverVersion
	if version == nil {
		version = ServerVersion
	}
	major, minor, err := version(cfg)
	if err != nil {
		return "", fmt.Errorf("decide sidecar mode: %w", err)
	}
	return SidecarModeFor(major, minor), nil
}

// SidecarModeFor is native from Kubernetes 1.29, where native sidecars are
// on by default, and classic before.
func SidecarModeFor(major, minor int) spec.SidecarMode {
	if major > 1 || (major == 1 && minor >= 29) {
		return spec.SidecarNative
	}
	return spec.SidecarClassic
}
