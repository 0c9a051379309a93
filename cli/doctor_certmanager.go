package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// certExpiryWarning: a Certificate this close to its end should have been
// renewed (config/certmanager renews 45 days before).
const certExpiryWarning = 30 * 24 * time.Hour

// certificateRef is the Certificate the caBundle comes from: the
// inject-ca-from annotation when a configuration has one, else the
// --certificate flag in AutoCrane's namespace.
func (d *doctor) certificateRef() client.ObjectKey {
	for _, obj := range d.configs() {
		if ns, name, ok := strings.Cut(obj.GetAnnotations()[injectCAFromAnnotation], "/"); ok && ns != "" && name != "" {
			return client.ObjectKey{Namespace: ns, Name: name}
		}
	}
	return client.ObjectKey{Namespace: d.opts.Namespace, Name: d.opts.Certificate}
}

// checkCertManager checks that cert-manager's Certificate is Ready and not
// about to expire, and takes its Secret's name for the other checks.
func (d *doctor) checkCertManager(ctx context.Context) {
	key := d.certificateRef()
	check := "cert-manager Certificate " + key.String()
	cert := &cmv1.Certificate{}
	err := d.client.Get(ctx, key, cert)
	switch {
	case meta.IsNoMatchError(err):
		d.report.fail(check, "cert-manager's Certificate API (certificates.cert-manager.io/v1) is not installed",
			"install cert-manager (docs/install.md), or run the manager with --cert-mode=self-managed (kubectl apply -k config/selfmanaged)")
		return
	case apierrors.IsNotFound(err):
		d.report.fail(check, "not found", "kubectl apply -k config/default creates it (config/certmanager)")
		return
	case apierrors.IsForbidden(err):
		d.report.warn(check, "not allowed to read it", "run the doctor as a cluster admin to check it")
		return
	case err != nil:
		d.report.fail(check, "cannot read it: "+err.Error(), "check the connection to the API server")
		return
	}
	if cert.Spec.SecretName != "" {
		d.opts.CertSecretName = cert.Spec.SecretName
	}
	describe := fmt.Sprintf("kubectl describe certificate -n %s %s, then its CertificateRequest and Issuer", key.Namespace, key.Name)
	ready := readyCondition(cert)
	if ready == nil || ready.Status != cmmeta.ConditionTrue {
		msg := "not Ready"
		if ready != nil {
			msg = fmt.Sprintf("not Ready (%s): %s", ready.Reason, ready.Message)
		}
		d.report.fail(check, msg, describe)
		return
	}
	if cert.Status.NotAfter == nil {
		d.report.warn(check, "Ready, but its status gives no expiry", describe)
		return
	}
	notAfter := cert.Status.NotAfter.Time
	left := notAfter.Sub(d.opts.Clock.Now())
	switch {
	case left <= 0:
		d.report.fail(check, "expired at "+stamp(notAfter), describe)
	case left < certExpiryWarning:
		d.report.warn(check, fmt.Sprintf("Ready, but expires at %s, in %d days: cert-manager should have renewed it", stamp(notAfter), int(left.Hours()/24)), describe)
	default:
		d.report.ok(check, "Ready, valid until "+stamp(notAfter))
	}
}

func readyCondition(c *cmv1.Certificate) *cmv1.CertificateCondition {
	for i := range c.Status.Conditions {
		if c.Status.Conditions[i].Type == cmv1.CertificateConditionReady {
			return &c.Status.Conditions[i]
		}
	}
	return nil
}
