//go:build e2e

package e2e

// cert-manager's controllers cannot be built on the test machines (their Go
// modules are not served by the module proxy), so the suite installs
// cert-manager's real CRDs from its module and then does, through the real
// API, what cert-manager would do with AutoCrane's objects:
//
//   - for each Certificate, once its Issuer can sign (selfSigned, or ca with
//     its Secret present), it writes the Secret the Certificate asks for
//     (tls.crt, tls.key, ca.crt; type kubernetes.io/tls) with a certificate
//     from the Certificate's spec (commonName, dnsNames, isCA, duration),
//     and marks the Certificate Ready with its notBefore, notAfter and
//     renewalTime (certstatus_test.go);
//   - for each webhook configuration annotated cert-manager.io/inject-ca-from
//     NAMESPACE/CERTIFICATE, it copies that Secret's ca.crt into every
//     webhook's clientConfig.caBundle, as cainjector does.
//
// So the manager serves a certificate signed by the CA Issuer's CA, and the
// API server trusts it through the injected bundle: the chain config/
// certmanager sets up, minus cert-manager's renewal.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

const certManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"

func certificatesGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
}

func issuersGVR() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "issuers"}
}

// installCertManagerCRDs applies the CRDs shipped in cert-manager's module
// (deploy/crds) and waits until they are established.
func (s *suite) installCertManagerCRDs(ctx context.Context) error {
	out, err := s.output(ctx, "go", "mod", "download", "-json", certManagerModule)
	if err != nil {
		return err
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal([]byte(out), &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download %s: no directory in %q", certManagerModule, out)
	}
	crds := mod.Dir + "/deploy/crds"
	// Server-side: the CRDs are too large for the last-applied annotation.
	if _, err := s.kubectl(ctx, "", "apply", "--server-side", "--force-conflicts", "-f", crds); err != nil {
		return err
	}
	_, err = s.kubectl(ctx, "", "wait", "--for=condition=Established", "--timeout=60s", "-f", crds)
	return err
}

// actAsCertManager issues every Certificate of ns and injects the CA
// bundles, as described at the top of this file.
func (s *suite) actAsCertManager(ctx context.Context, ns string) error {
	list, err := s.dyn.Resource(certificatesGVR()).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing Certificates: %w", err)
	}
	pending := list.Items
	// Issue in dependency order: a CA Issuer signs once its Secret exists.
	for len(pending) > 0 {
		var next []unstructured.Unstructured
		for _, cert := range pending {
			issued, err := s.issue(ctx, cert)
			if err != nil {
				return err
			}
			if !issued {
				next = append(next, cert)
			}
		}
		if len(next) == len(pending) {
			return fmt.Errorf("no Issuer can sign Certificate %s/%s yet", ns, next[0].GetName())
		}
		pending = next
	}
	return s.injectCABundles(ctx)
}

// issue writes the Secret of cert when its Issuer can sign; false means
// the Issuer's CA Secret does not exist yet.
func (s *suite) issue(ctx context.Context, cert unstructured.Unstructured) (bool, error) {
	ns := cert.GetNamespace()
	spec, _ := cert.Object["spec"].(map[string]any)
	issuerName, _, _ := unstructured.NestedString(spec, "issuerRef", "name")
	issuerKind, _, _ := unstructured.NestedString(spec, "issuerRef", "kind")
	if issuerKind != "" && issuerKind != "Issuer" {
		return false, fmt.Errorf("Certificate %s/%s: issuer kind %s is not simulated", ns, cert.GetName(), issuerKind)
	}
	issuer, err := s.dyn.Resource(issuersGVR()).Namespace(ns).Get(ctx, issuerName, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("Certificate %s/%s: issuer %s: %w", ns, cert.GetName(), issuerName, err)
	}
	var signer *keyPair
	if _, selfSigned, _ := unstructured.NestedMap(issuer.Object, "spec", "selfSigned"); !selfSigned {
		caSecret, found, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName")
		if !found {
			return false, fmt.Errorf("issuer %s/%s is neither selfSigned nor ca", ns, issuerName)
		}
		sec, err := s.cs.CoreV1().Secrets(ns).Get(ctx, caSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if signer, err = parseKeyPair(sec.Data["tls.crt"], sec.Data["tls.key"]); err != nil {
			return false, fmt.Errorf("CA Secret %s/%s: %w", ns, caSecret, err)
		}
	}
	pair, err := newCertificate(spec, signer)
	if err != nil {
		return false, fmt.Errorf("Certificate %s/%s: %w", ns, cert.GetName(), err)
	}
	ca := pair.certPEM
	if signer != nil {
		ca = signer.certPEM
	}
	secretName, _, _ := unstructured.NestedString(spec, "secretName")
	labels, _, _ := unstructured.NestedStringMap(spec, "secretTemplate", "labels")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: ns, Labels: labels, Annotations: map[string]string{
			"cert-manager.io/certificate-name": cert.GetName(),
			"cert-manager.io/issuer-name":      issuerName,
			"cert-manager.io/issuer-kind":      "Issuer",
		}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": pair.certPEM, "tls.key": pair.keyPEM, "ca.crt": ca},
	}
	_, err = s.cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = s.cs.CoreV1().Secrets(ns).Update(ctx, secret, metav1.UpdateOptions{})
	}
	if err != nil {
		return false, fmt.Errorf("writing Secret %s/%s: %w", ns, secretName, err)
	}
	if err := s.markCertificateReady(ctx, cert, pair.certPEM); err != nil {
		return false, err
	}
	s.logf("issued Secret %s/%s for Certificate %s (issuer %s)", ns, secretName, cert.GetName(), issuerName)
	return true, nil
}

// injectCABundles fills the caBundle of every webhook configuration that
// names a Certificate in cert-manager.io/inject-ca-from.
func (s *suite) injectCABundles(ctx context.Context) error {
	mutating, err := s.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	validating, err := s.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	type target struct {
		name, from string
		webhooks   int
		patch      func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) error
	}
	var targets []target
	for _, m := range mutating.Items {
		targets = append(targets, target{m.Name, m.Annotations["cert-manager.io/inject-ca-from"], len(m.Webhooks),
			func(ctx context.Context, n string, pt types.PatchType, b []byte, o metav1.PatchOptions, sub ...string) error {
				_, err := s.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, n, pt, b, o, sub...)
				return err
			}})
	}
	for _, v := range validating.Items {
		targets = append(targets, target{v.Name, v.Annotations["cert-manager.io/inject-ca-from"], len(v.Webhooks),
			func(ctx context.Context, n string, pt types.PatchType, b []byte, o metav1.PatchOptions, sub ...string) error {
				_, err := s.cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Patch(ctx, n, pt, b, o, sub...)
				return err
			}})
	}
	for _, t := range targets {
		if t.from == "" {
			continue
		}
		ns, certName, ok := strings.Cut(t.from, "/")
		if !ok {
			return fmt.Errorf("%s: inject-ca-from %q is not NAMESPACE/NAME", t.name, t.from)
		}
		cert, err := s.dyn.Resource(certificatesGVR()).Namespace(ns).Get(ctx, certName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s: inject-ca-from %s: %w", t.name, t.from, err)
		}
		secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
		sec, err := s.cs.CoreV1().Secrets(ns).Get(ctx, secretName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("%s: the Secret of %s: %w", t.name, t.from, err)
		}
		var ops []map[string]any
		for i := range t.webhooks {
			ops = append(ops, map[string]any{"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i),
				"value": base64.StdEncoding.EncodeToString(sec.Data["ca.crt"])})
		}
		patch, _ := json.Marshal(ops)
		if err := t.patch(ctx, t.name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("injecting the CA into %s: %w", t.name, err)
		}
		s.logf("injected the CA of %s into %s (%d webhooks)", t.from, t.name, t.webhooks)
	}
	return nil
}

// keyPair is a PEM certificate and key, parsed for signing.
type keyPair struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
}

func parseKeyPair(certPEM, keyPEM []byte) (*keyPair, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("no PEM certificate and key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	return &keyPair{certPEM: certPEM, keyPEM: keyPEM, cert: cert, key: key}, nil
}

// newCertificate creates an ECDSA P-256 certificate from a Certificate's
// spec, signed by signer, or self-signed when signer is nil.
func newCertificate(spec map[string]any, signer *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cn, _, _ := unstructured.NestedString(spec, "commonName")
	dnsNames, _, _ := unstructured.NestedStringSlice(spec, "dnsNames")
	isCA, _, _ := unstructured.NestedBool(spec, "isCA")
	lifetime := 90 * 24 * time.Hour
	if d, found, _ := unstructured.NestedString(spec, "duration"); found {
		if lifetime, err = time.ParseDuration(d); err != nil {
			return nil, fmt.Errorf("duration %q: %w", d, err)
		}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	parent, parentKey := tmpl, key
	if signer != nil {
		parent, parentKey = signer.cert, signer.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}
