package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/certs"
	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/internal/envflag"
	"github.com/autocrane/autocrane/manager"
)

const managerUsage = `Usage: autocrane manager [flags]

Runs AutoCrane's admission webhooks (and, in later releases, its controllers)
against the cluster named by --kubeconfig, $KUBECONFIG, ~/.kube/config or the
in-cluster service account, in that order.

Every flag can also be set through the environment variable shown after it;
the flag wins. Flags:
`

// managerFlags are the manager's flags, bound to manager.Options.
type managerFlags struct {
	kubeconfig          string
	opts                manager.Options
	pullPolicy          string
	dataDeployerPort    int
	watchdogHealthzPort int
	certExtraSANs       string // comma-separated; webhook certificates
	tokenHosts          string // comma-separated; data repository token
	zap                 zap.Options
}

func newManagerFlags(stderr io.Writer) (*flag.FlagSet, *managerFlags, *envflag.Set) {
	fs, e := newFlagSet("manager", managerUsage, stderr)
	m := &managerFlags{opts: manager.Options{Injector: injector.DefaultConfig()}}
	def := injector.DefaultConfig()
	e.String(&m.kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty: $KUBECONFIG, ~/.kube/config, then in-cluster")
	e.String(&m.opts.WebhookHost, "webhook-host", "", "address the webhook server listens on; empty: all addresses")
	e.Int(&m.opts.WebhookPort, "webhook-port", 9443, "port the webhook server listens on")
	e.String(&m.opts.CertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with the webhook's tls.crt and tls.key; reloaded when they change")
	e.String(&m.opts.MetricsBindAddress, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; \"0\" turns it off")
	e.String(&m.opts.HealthProbeBindAddress, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; \"0\" turns them off")
	e.Bool(&m.opts.LeaderElection, "leader-elect", false, "elect one leader among replicas for the controllers (webhooks run on every replica)")
	e.String(&m.opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease; empty: --namespace")
	e.String(&m.opts.Namespace, "namespace", "", "AutoCrane's own namespace, never injected (set it from the downward API)")
	e.String(&m.opts.SidecarMode, "sidecar-mode", manager.SidecarModeAuto, "default datadeployer injection: native, classic, or auto (native on Kubernetes 1.29 and newer); pods override it with inject.autocrane.io/sidecar-mode")
	e.String(&m.opts.Injector.DataDeployerImage, "datadeployer-image", def.DataDeployerImage, "image of the injected datadeployer")
	e.String(&m.opts.Injector.WatchdogHealthzImage, "watchdoghealthz-image", def.WatchdogHealthzImage, "image of the injected watchdoghealthz sidecar")
	e.String(&m.pullPolicy, "image-pull-policy", string(def.ImagePullPolicy), "pull policy of the injected containers: Always, IfNotPresent or Never")
	e.Int(&m.dataDeployerPort, "datadeployer-port", int(def.DataDeployerPort), "port the injected datadeployer listens on inside the pod")
	e.Int(&m.watchdogHealthzPort, "watchdoghealthz-port", int(def.WatchdogHealthzPort), "port the injected watchdoghealthz sidecar listens on inside the pod")
	c := &m.opts.Controllers
	e.Bool(&c.Disabled, "disable-controllers", false, "serve the webhooks only: no watchdog prober, no eviction")
	e.Int(&c.ProbeWorkers, "probe-workers", 32, "watchdog probes that run at once")
	e.Bool(&c.EvictionDryRun, "dry-run-evictions", false, "log and record Events for the evictions that would happen, without evicting")
	e.Float64(&c.EvictionStormShare, "eviction-storm-share", 0.5, "evict none of an owner's pods while more than this share of them (and at least two) are in error")
	e.Float64(&c.EvictionsPerMinute, "evictions-per-minute", 30, "cluster-wide cap on evictions")
	e.Int(&c.EvictionBurst, "eviction-burst", 5, "evictions allowed at once above the per-minute rate")
	e.Duration(&c.DataPollInterval, "data-poll-interval", 30*time.Second, "how often each data rollout asks its repository for new versions (at least 1s); data rollouts need --namespace, where their state lives")
	e.String(&c.DataRepositoryTokenFile, "data-repository-token-file", "", "a file with the bearer token that data rollouts send to the data repositories named by --data-repository-token-hosts (mount it from a Secret); empty: no token")
	e.String(&m.tokenHosts, "data-repository-token-hosts", "", "comma-separated host names of the data repositories that get the token; store URLs come from users, so the token goes to no other host")
	// Webhook certificates (docs/tls.md).
	sm := &m.opts.SelfManagedCerts
	e.String(&m.opts.CertMode, "cert-mode", manager.CertModeCertManager, "where the webhook's certificate comes from: cert-manager (tls.crt and tls.key in --webhook-cert-dir, written by cert-manager or anyone, reloaded when they change) or self-managed (the leader keeps a CA and the certificate in the Secret --cert-secret-name and writes the CA into the webhook configurations' caBundle; every replica serves it from memory)")
	e.String(&sm.SecretName, "cert-secret-name", manager.DefaultCertSecretName, "self-managed: the kubernetes.io/tls Secret in --namespace holding the CA and the serving certificate")
	e.String(&sm.ServiceName, "webhook-service-name", manager.DefaultWebhookServiceName, "self-managed: the webhook's Service; the certificate is valid for <name>.<namespace>.svc and <name>.<namespace>.svc.cluster.local")
	e.String(&m.certExtraSANs, "cert-extra-sans", "", "self-managed: more names for the certificate, comma-separated IP addresses or DNS names")
	e.String(&sm.MutatingWebhookConfiguration, "mutating-webhook-configuration", certs.DefaultMutatingWebhookConfiguration, "self-managed: the MutatingWebhookConfiguration whose caBundle the leader keeps")
	e.String(&sm.ValidatingWebhookConfiguration, "validating-webhook-configuration", certs.DefaultValidatingWebhookConfiguration, "self-managed: the ValidatingWebhookConfiguration whose caBundle the leader keeps")
	e.Duration(&sm.Policy.CALifetime, "cert-ca-lifetime", certs.DefaultCALifetime, "self-managed: validity of a new CA; the CA is rotated at two thirds of it")
	e.Duration(&sm.Policy.ServingLifetime, "cert-serving-lifetime", certs.DefaultServingLifetime, "self-managed: validity of a new serving certificate (never past its CA's); renewed at two thirds of it")
	e.Duration(&sm.Policy.CAOverlap, "cert-ca-overlap", certs.DefaultCAOverlap, "self-managed: how long a new CA is trusted before it signs, and the old one after; must exceed the time a Secret and a webhook configuration take to reach every replica and API server, and be under a sixth of --cert-ca-lifetime")
	m.zap.BindFlags(fs)
	return fs, m, e
}

func runManager(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs, m, e := newManagerFlags(stderr)
	if err := parseArgs(fs, e, args); err != nil {
		return err
	}
	m.opts.Injector.ImagePullPolicy = corev1.PullPolicy(m.pullPolicy)
	if m.tokenHosts != "" {
		m.opts.Controllers.DataRepositoryTokenHosts = strings.Split(m.tokenHosts, ",")
	}
	if m.certExtraSANs != "" {
		m.opts.SelfManagedCerts.ExtraSANs = strings.Split(m.certExtraSANs, ",")
	}
	m.opts.Injector.DataDeployerPort = int32(m.dataDeployerPort)
	m.opts.Injector.WatchdogHealthzPort = int32(m.watchdogHealthzPort)
	log := zap.New(zap.UseFlagOptions(&m.zap), zap.WriteTo(stderr))
	m.opts.Logger = log
	log.Info("starting", "version", version, "webhookPort", m.opts.WebhookPort, "certDir", m.opts.CertDir,
		"namespace", m.opts.Namespace, "sidecarMode", m.opts.SidecarMode, "leaderElection", m.opts.LeaderElection,
		"certMode", m.opts.CertMode, "certSecretName", m.opts.SelfManagedCerts.SecretName,
		"dataDeployerImage", m.opts.Injector.DataDeployerImage, "watchdogHealthzImage", m.opts.Injector.WatchdogHealthzImage)

	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = m.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	mgr, err := manager.New(ctx, cfg, m.opts)
	if err != nil {
		return err
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager stopped: %w", err)
	}
	return nil
}
