package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/certs"
)

// injectCAFromAnnotation is cert-manager's cainjector annotation: the
// Certificate (namespace/name) whose CA goes into the caBundle.
const injectCAFromAnnotation = "cert-manager.io/inject-ca-from"

// hookEntry is one webhooks[] item of either configuration.
type hookEntry struct {
	config, name string
	client       admissionregistrationv1.WebhookClientConfig
}

func (h hookEntry) id() string { return h.config + "/" + h.name }

// endpoint is where the API server calls the entry: the host it verifies
// the certificate for, and the address it dials.
func (h hookEntry) endpoint() (host, addr string, err error) {
	if u := h.client.URL; u != nil {
		parsed, err := url.Parse(*u)
		if err != nil {
			return "", "", fmt.Errorf("url %q: %w", *u, err)
		}
		port := parsed.Port()
		if port == "" {
			port = "443"
		}
		return parsed.Hostname(), net.JoinHostPort(parsed.Hostname(), port), nil
	}
	if s := h.client.Service; s != nil {
		port := int32(443)
		if s.Port != nil {
			port = *s.Port
		}
		host = s.Name + "." + s.Namespace + ".svc"
		return host, net.JoinHostPort(host, strconv.Itoa(int(port))), nil
	}
	return "", "", errors.New("clientConfig has neither url nor service")
}

func (d *doctor) entries() []hookEntry {
	var out []hookEntry
	if m := d.mutating; m != nil {
		for _, w := range m.Webhooks {
			out = append(out, hookEntry{m.Name, w.Name, w.ClientConfig})
		}
	}
	if v := d.validating; v != nil {
		for _, w := range v.Webhooks {
			out = append(out, hookEntry{v.Name, w.Name, w.ClientConfig})
		}
	}
	return out
}

// configs returns the configurations found, as objects (never a typed nil).
func (d *doctor) configs() []client.Object {
	var out []client.Object
	if d.mutating != nil {
		out = append(out, d.mutating)
	}
	if d.validating != nil {
		out = append(out, d.validating)
	}
	return out
}

// checkWebhookConfigurations reads both configurations.
func (d *doctor) checkWebhookConfigurations(ctx context.Context) {
	hint := "apply AutoCrane's manifests: kubectl apply -k config/default (or config/selfmanaged)"
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if d.get(ctx, "webhook configuration "+d.opts.MutatingWebhookConfiguration, client.ObjectKey{Name: d.opts.MutatingWebhookConfiguration}, m, hint) {
		d.mutating = m
		d.report.ok("webhook configuration "+m.Name, fmt.Sprintf("MutatingWebhookConfiguration with %d webhooks", len(m.Webhooks)))
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if d.get(ctx, "webhook configuration "+d.opts.ValidatingWebhookConfiguration, client.ObjectKey{Name: d.opts.ValidatingWebhookConfiguration}, v, hint) {
		d.validating = v
		d.report.ok("webhook configuration "+v.Name, fmt.Sprintf("ValidatingWebhookConfiguration with %d webhooks", len(v.Webhooks)))
	}
}

// get reads an object and reports why it could not: FAIL when it does
// not exist, WARN when the doctor may not read it.
func (d *doctor) get(ctx context.Context, check string, key client.ObjectKey, obj client.Object, notFoundHint string) bool {
	err := d.client.Get(ctx, key, obj)
	switch {
	case err == nil:
		return true
	case apierrors.IsNotFound(err):
		d.report.fail(check, "not found", notFoundHint)
	case apierrors.IsForbidden(err):
		d.report.warn(check, "not allowed to read it: "+err.Error(), "run the doctor as a cluster admin to check it")
	default:
		d.report.fail(check, "cannot read it: "+err.Error(), "check the connection to the API server")
	}
	return false
}

// certMode decides which certificate checks apply: the flag, or what the
// install shows. Empty: unknown.
func (d *doctor) certMode(ctx context.Context) string {
	const check = "certificate mode"
	if d.opts.CertMode != DoctorCertModeAuto {
		d.report.ok(check, d.opts.CertMode+" (from --cert-mode)")
		return d.opts.CertMode
	}
	for _, obj := range d.configs() {
		if obj.GetAnnotations()[injectCAFromAnnotation] == "" {
			continue
		}
		d.report.ok(check, fmt.Sprintf("cert-manager (%s carries %s: %s)", obj.GetName(), injectCAFromAnnotation, obj.GetAnnotations()[injectCAFromAnnotation]))
		return DoctorCertModeCertManager
	}
	secret := &corev1.Secret{}
	err := d.client.Get(ctx, client.ObjectKey{Namespace: d.opts.Namespace, Name: d.opts.CertSecretName}, secret)
	if err == nil && len(secret.Data[certs.KeyCAKey]) > 0 {
		d.report.ok(check, fmt.Sprintf("self-managed (Secret %s/%s holds %s)", d.opts.Namespace, d.opts.CertSecretName, certs.KeyCAKey))
		return DoctorCertModeSelfManaged
	}
	d.report.warn(check, fmt.Sprintf("cannot tell: no %s annotation on the webhook configurations, and no Secret %s/%s holding a CA key",
		injectCAFromAnnotation, d.opts.Namespace, d.opts.CertSecretName),
		"pass --cert-mode=cert-manager or --cert-mode=self-managed to run that mode's checks")
	return ""
}

// checkSelfManagedSecret checks the Secret the manager's leader keeps.
func (d *doctor) checkSelfManagedSecret(ctx context.Context) {
	key := client.ObjectKey{Namespace: d.opts.Namespace, Name: d.opts.CertSecretName}
	check := "self-managed Secret " + key.String()
	secret := &corev1.Secret{}
	if !d.get(ctx, check, key, secret, "the manager's leader creates it: check that the manager runs with "+
		"--cert-mode=self-managed and --cert-secret-name="+key.Name+", and its logs") {
		return
	}
	s := certs.Parse(secret.Data, secret.Annotations)
	now := d.opts.Clock.Now()
	hint := "the manager's leader repairs it within seconds; if it does not, read its logs (RBAC: update secrets " + key.Name + ")"
	switch {
	case s.CAErr != nil:
		d.report.fail(check, "unusable CA: "+s.CAErr.Error(), hint)
	case s.CA == nil:
		d.report.fail(check, "holds no CA", hint)
	case !now.Before(s.CA.Cert.NotAfter):
		d.report.fail(check, "the CA expired at "+stamp(s.CA.Cert.NotAfter), hint)
	case s.ServingErr != nil:
		d.report.fail(check, "unusable serving certificate: "+s.ServingErr.Error(), hint)
	case s.Serving == nil:
		d.report.fail(check, "holds no serving certificate", hint)
	case s.Serving.Cert.CheckSignatureFrom(s.CA.Cert) != nil:
		d.report.fail(check, "tls.crt is not signed by ca.crt", hint)
	default:
		msg := fmt.Sprintf("CA valid until %s, serving certificate until %s", stamp(s.CA.Cert.NotAfter), stamp(s.Serving.Cert.NotAfter))
		if s.NextCA != nil {
			msg += "; a CA rotation is in progress (ca-next.crt)"
		}
		if s.PreviousCA != nil {
			msg += "; the previous CA is still trusted (ca-previous.crt)"
		}
		d.report.ok(check, msg)
	}
}

// servingCert is a certificate chain the webhook serves, and where it was
// found.
type servingCert struct {
	source string
	chain  []*x509.Certificate
}

// checkCABundles fetches the serving certificate from its Secret and by a
// handshake with every endpoint, then checks that each entry's caBundle
// verifies what its endpoint serves.
func (d *doctor) checkCABundles(ctx context.Context, mode string) {
	entries := d.entries()
	if len(entries) == 0 {
		return
	}
	fromSecret := d.servingFromSecret(ctx, mode)
	served := map[string]*servingCert{}
	for _, e := range entries {
		_, addr, err := e.endpoint()
		if err != nil {
			continue
		}
		if _, seen := served[addr]; !seen {
			served[addr] = d.handshake(ctx, addr)
		}
	}
	now := d.opts.Clock.Now()
	for _, e := range entries {
		check := "caBundle " + e.id()
		host, addr, err := e.endpoint()
		if err != nil {
			d.report.fail(check, err.Error(), "fix the entry's clientConfig")
			continue
		}
		if len(e.client.CABundle) == 0 {
			d.report.fail(check, "empty", caBundleHint(mode))
			continue
		}
		var sources []*servingCert
		for _, s := range []*servingCert{fromSecret, served[addr]} {
			if s != nil {
				sources = append(sources, s)
			}
		}
		if len(sources) == 0 {
			d.report.warn(check, "no serving certificate to verify it against (Secret unreadable, "+addr+" unreachable)",
				"run the doctor where it can read the Secret or reach the Service")
			continue
		}
		var failures, oks []string
		for _, s := range sources {
			if err := verifyChain(e.client.CABundle, s.chain, host, now); err != nil {
				failures = append(failures, fmt.Sprintf("does not verify the certificate %s for %s: %v", s.source, host, err))
			} else {
				oks = append(oks, s.source)
			}
		}
		if len(failures) > 0 {
			d.report.fail(check, strings.Join(failures, "; "), caBundleHint(mode))
			continue
		}
		d.report.ok(check, fmt.Sprintf("verifies the certificate %s for %s", strings.Join(oks, " and "), host))
	}
}

func caBundleHint(mode string) string {
	switch mode {
	case DoctorCertModeCertManager:
		return "cert-manager's cainjector fills it from the Certificate named by " + injectCAFromAnnotation + ": check that cainjector runs and the annotation is on the configuration"
	case DoctorCertModeSelfManaged:
		return "the manager's leader writes it within seconds: check that a manager runs with --cert-mode=self-managed, and its logs (RBAC: patch the webhook configurations)"
	default:
		return "the caBundle must hold the CA that signed the webhook's serving certificate"
	}
}

// servingFromSecret reads tls.crt from the serving certificate's Secret
// and reports its validity; nil when it cannot be read.
func (d *doctor) servingFromSecret(ctx context.Context, mode string) *servingCert {
	key := client.ObjectKey{Namespace: d.opts.Namespace, Name: d.opts.CertSecretName}
	check := "serving certificate in Secret " + key.String()
	secret := &corev1.Secret{}
	err := d.client.Get(ctx, key, secret)
	switch {
	case apierrors.IsNotFound(err) && mode == "":
		return nil // nothing says it should exist
	case apierrors.IsNotFound(err):
		d.report.fail(check, "not found", caBundleHint(mode))
		return nil
	case apierrors.IsForbidden(err):
		d.report.warn(check, "not allowed to read it", "run the doctor as a cluster admin to compare it with the caBundle")
		return nil
	case err != nil:
		d.report.warn(check, "cannot read it: "+err.Error(), "")
		return nil
	}
	chain, err := parseChain(secret.Data[certs.KeyServingCert])
	if err != nil {
		d.report.fail(check, "tls.crt: "+err.Error(), caBundleHint(mode))
		return nil
	}
	s := &servingCert{source: "in Secret " + key.String(), chain: chain}
	d.reportValidity(check, chain[0])
	return s
}

// handshake fetches the chain an endpoint serves; nil when unreachable.
func (d *doctor) handshake(ctx context.Context, addr string) *servingCert {
	check := "serving certificate at " + addr
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	dialer := &tls.Dialer{Config: &tls.Config{
		// The point is to fetch whatever is served and verify it against
		// each caBundle below, which a failed verification here would hide.
		InsecureSkipVerify: true, //nolint:gosec // verified against the caBundle by verifyChain
		MinVersion:         tls.VersionTLS12,
	}}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		d.report.warn(check, "unreachable from here: "+err.Error(),
			"a Service is reachable only from inside the cluster: run the doctor in a pod, or rely on the dry-run check")
		return nil
	}
	defer conn.Close()
	chain := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(chain) == 0 {
		d.report.fail(check, "served no certificate", "check the manager's readiness (/readyz, check "+webhookCertificateCheck+")")
		return nil
	}
	d.reportValidity(check, chain[0])
	return &servingCert{source: "served at " + addr, chain: chain}
}

// webhookCertificateCheck is the manager's readyz check for its
// certificate (manager.WebhookCertificateCheck).
const webhookCertificateCheck = "webhook-certificate"

func (d *doctor) reportValidity(check string, leaf *x509.Certificate) {
	now := d.opts.Clock.Now()
	switch {
	case now.Before(leaf.NotBefore):
		d.report.fail(check, "not valid before "+stamp(leaf.NotBefore), "check the clocks of the manager's and the doctor's machines")
	case !now.Before(leaf.NotAfter):
		d.report.fail(check, "expired at "+stamp(leaf.NotAfter), "renew it: see docs/tls.md")
	default:
		d.report.ok(check, fmt.Sprintf("valid until %s for %s", stamp(leaf.NotAfter), strings.Join(certNames(leaf), ", ")))
	}
}

func certNames(c *x509.Certificate) []string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// parseChain reads PEM certificates, leaf first.
func parseChain(raw []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return chain, nil
}

// verifyChain checks a served chain against a caBundle as the API server
// does: the bundle's certificates are the only roots, host must be among
// the leaf's names, and the leaf must allow server authentication.
func verifyChain(bundle []byte, chain []*x509.Certificate, host string, now time.Time) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errors.New("the caBundle holds no PEM certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
