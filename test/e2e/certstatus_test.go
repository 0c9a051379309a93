//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// markCertificateReady writes the status cert-manager gives a Certificate
// it has just issued (the Ready condition, notBefore, notAfter,
// renewalTime, revision), so that what reads it, autocrane doctor first,
// sees the install as it would be with cert-manager running.
func (s *suite) markCertificateReady(ctx context.Context, cert unstructured.Unstructured, certPEM []byte) error {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return fmt.Errorf("Certificate %s/%s: no PEM certificate issued", cert.GetNamespace(), cert.GetName())
	}
	issued, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("Certificate %s/%s: %w", cert.GetNamespace(), cert.GetName(), err)
	}
	// cert-manager renews at notAfter minus spec.renewBefore, else at two
	// thirds of the lifetime.
	renewal := issued.NotBefore.Add(issued.NotAfter.Sub(issued.NotBefore) * 2 / 3)
	if d, found, _ := unstructured.NestedString(cert.Object, "spec", "renewBefore"); found {
		if before, err := time.ParseDuration(d); err == nil {
			renewal = issued.NotAfter.Add(-before)
		}
	}
	revision, _, _ := unstructured.NestedInt64(cert.Object, "status", "revision")
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	cert.Object["status"] = map[string]any{
		"conditions": []any{map[string]any{
			"type": "Ready", "status": "True", "reason": "Ready",
			"message":            "Certificate is up to date and has not expired",
			"lastTransitionTime": stamp(time.Now()),
			"observedGeneration": cert.GetGeneration(),
		}},
		"notBefore":   stamp(issued.NotBefore),
		"notAfter":    stamp(issued.NotAfter),
		"renewalTime": stamp(renewal),
		"revision":    revision + 1,
	}
	_, err = s.dyn.Resource(certificatesGVR()).Namespace(cert.GetNamespace()).UpdateStatus(ctx, &cert, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("writing the status of Certificate %s/%s: %w", cert.GetNamespace(), cert.GetName(), err)
	}
	return nil
}
