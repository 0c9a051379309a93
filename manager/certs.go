package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/certs"
)

// Certificate modes: where the webhook's serving certificate comes from
// (docs/tls.md).
const (
	// CertModeCertManager serves tls.crt and tls.key from CertDir, reloaded
	// when they change; cert-manager (or anyone) writes them and fills the
	// caBundle.
	CertModeCertManager = "cert-manager"
	// CertModeSelfManaged keeps a CA and a serving certificate in a Secret
	// (the leader creates and rotates them and fills the caBundle), and
	// every replica serves from that Secret through its cache.
	CertModeSelfManaged = "self-managed"
)

// Defaults of SelfManagedCerts.
const (
	DefaultCertSecretName     = "autocrane-webhook-tls"
	DefaultWebhookServiceName = "autocrane-webhook"
)

// WebhookCertificateCheck names the readyz check that fails until a valid
// serving certificate is loaded, in both modes.
const WebhookCertificateCheck = "webhook-certificate"

// SelfManagedCerts configures CertModeSelfManaged; other modes ignore it.
// The Secret lives in Options.Namespace, which is then required.
type SelfManagedCerts struct {
	// SecretName is the TLS Secret holding the CA and the serving
	// certificate. Empty: DefaultCertSecretName.
	SecretName string
	// ServiceName is the webhook Service; the certificate is valid for
	// <ServiceName>.<Namespace>.svc and its .cluster.local form. Empty:
	// DefaultWebhookServiceName.
	ServiceName string
	// ExtraSANs are more names for the certificate: IP addresses or DNS
	// names. Empty: none.
	ExtraSANs []string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration name
	// the configurations whose caBundle is kept. Empty: autocrane-mutating
	// and autocrane-validating, as config/webhook ships them.
	MutatingWebhookConfiguration   string
	ValidatingWebhookConfiguration string
	// Policy sets the lifetimes and the CA overlap; its zero fields take
	// the defaults of package certs (1 year, 90 days, 10 minutes).
	Policy certs.Policy
	// Clock is the rotator's time source. Nil: the real clock. For tests.
	Clock clock.Clock
}

// certSetup is the certificate part of the manager, decided before the
// controller-runtime manager exists (its cache and TLS options depend on
// it) and added to it afterwards.
type certSetup struct {
	mode   string
	source certs.Source
	clock  clock.Clock
	// watcher is the cert-manager mode's file watcher.
	watcher *certwatcher.CertWatcher
	// serving, rotator and secret are the self-managed mode's.
	serving *certs.Serving
	rotator certs.RotatorOptions
	secret  types.NamespacedName
}

func newCertSetup(opts Options) (*certSetup, error) {
	switch opts.CertMode {
	case "", CertModeCertManager:
		return newCertManagerSetup(opts.CertDir)
	case CertModeSelfManaged:
		return newSelfManagedSetup(opts)
	default:
		return nil, fmt.Errorf("certificate mode %q: must be %s or %s", opts.CertMode, CertModeCertManager, CertModeSelfManaged)
	}
}

func newCertManagerSetup(dir string) (*certSetup, error) {
	if dir == "" {
		// controller-runtime's default, kept from before the modes existed.
		dir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	w, err := certwatcher.New(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, fmt.Errorf("load webhook certificate from %s: %w", dir, err)
	}
	return &certSetup{mode: CertModeCertManager, source: w, watcher: w, clock: clock.RealClock{}}, nil
}

func newSelfManagedSetup(opts Options) (*certSetup, error) {
	sm := opts.SelfManagedCerts
	if opts.Namespace == "" {
		return nil, errors.New("self-managed certificates: the manager's namespace is required (--namespace)")
	}
	service := defaultString(sm.ServiceName, DefaultWebhookServiceName)
	sans, err := certs.ServiceSANs(service, opts.Namespace, sm.ExtraSANs)
	if err != nil {
		return nil, fmt.Errorf("self-managed certificates: %w", err)
	}
	policy := sm.Policy.WithDefaults()
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("self-managed certificates: %w", err)
	}
	clk := sm.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	secret := types.NamespacedName{Namespace: opts.Namespace, Name: defaultString(sm.SecretName, DefaultCertSecretName)}
	serving := &certs.Serving{}
	return &certSetup{
		mode:    CertModeSelfManaged,
		source:  serving,
		clock:   clk,
		serving: serving,
		secret:  secret,
		rotator: certs.RotatorOptions{
			Secret: secret,
			Webhooks: certs.WebhookConfigurations{
				Mutating:   defaultString(sm.MutatingWebhookConfiguration, certs.DefaultMutatingWebhookConfiguration),
				Validating: defaultString(sm.ValidatingWebhookConfiguration, certs.DefaultValidatingWebhookConfiguration),
			},
			Policy: policy,
			SANs:   sans,
			Clock:  clk,
		},
	}, nil
}

// withCacheByObject adds to byObject, in self-managed mode, the one Secret
// and the two webhook configurations, each by name: the manager never lists
// or watches any other Secret (and RBAC can grant exactly these).
func (c *certSetup) withCacheByObject(byObject map[client.Object]cache.ByObject) map[client.Object]cache.ByObject {
	if c.mode != CertModeSelfManaged {
		return byObject
	}
	if byObject == nil {
		byObject = map[client.Object]cache.ByObject{}
	}
	byName := func(name string) fields.Selector { return fields.OneTermEqualSelector("metadata.name", name) }
	byObject[&corev1.Secret{}] = cache.ByObject{
		Namespaces: map[string]cache.Config{c.secret.Namespace: {}},
		Field:      byName(c.secret.Name),
	}
	byObject[&admissionregistrationv1.MutatingWebhookConfiguration{}] = cache.ByObject{Field: byName(c.rotator.Webhooks.Mutating)}
	byObject[&admissionregistrationv1.ValidatingWebhookConfiguration{}] = cache.ByObject{Field: byName(c.rotator.Webhooks.Validating)}
	return byObject
}

// tlsOption makes the webhook server serve from the source.
func (c *certSetup) tlsOption(cfg *tls.Config) {
	cfg.GetCertificate = c.source.GetCertificate
}

// addTo adds the certificate runnables, the readyz check and the expiry
// metric to the manager.
func (c *certSetup) addTo(ctx context.Context, mgr ctrl.Manager, reg prometheus.Registerer, log logr.Logger) error {
	switch c.mode {
	case CertModeCertManager:
		if err := mgr.Add(c.watcher); err != nil {
			return fmt.Errorf("add certificate watcher: %w", err)
		}
	case CertModeSelfManaged:
		if err := c.serveFromSecret(ctx, mgr, log); err != nil {
			return err
		}
		opts := c.rotator
		opts.Client, opts.Informers, opts.Logger = mgr.GetClient(), mgr.GetCache(), log.WithName("webhook-certificates")
		r, err := certs.NewRotator(opts)
		if err != nil {
			return fmt.Errorf("self-managed certificates: %w", err)
		}
		if err := mgr.Add(r); err != nil {
			return fmt.Errorf("add certificate rotator: %w", err)
		}
	}
	if err := mgr.AddReadyzCheck(WebhookCertificateCheck, certs.ReadyChecker(c.source, c.clock)); err != nil {
		return fmt.Errorf("add readyz check: %w", err)
	}
	if err := reg.Register(certs.NewExpiryCollector(c.source)); err != nil {
		return fmt.Errorf("register certificate expiry metric: %w", err)
	}
	return nil
}

// serveFromSecret feeds Serving from the cached Secret on every replica.
// A deleted Secret keeps the last certificate in service until the leader
// writes a new one.
func (c *certSetup) serveFromSecret(ctx context.Context, mgr ctrl.Manager, log logr.Logger) error {
	inf, err := mgr.GetCache().GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return fmt.Errorf("watch Secret %s: %w", c.secret, err)
	}
	load := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok || s.Namespace != c.secret.Namespace || s.Name != c.secret.Name {
			return
		}
		if err := c.serving.Update(s); err != nil {
			log.Error(err, "cannot serve the certificate of the Secret; keeping the previous one", "secret", c.secret)
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    load,
		UpdateFunc: func(_, obj any) { load(obj) },
	})
	if err != nil {
		return fmt.Errorf("watch Secret %s: %w", c.secret, err)
	}
	return nil
}
