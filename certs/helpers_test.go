package certs

import (
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// t0 is the tests' start of time.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func testSANs(t testing.TB) SANs {
	t.Helper()
	s, err := ServiceSANs("autocrane-webhook", "autocrane-system", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCA(t testing.TB, issued time.Time, lifetime time.Duration) *KeyPair {
	t.Helper()
	ca, err := NewCA(issued, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustServing(t testing.TB, ca *KeyPair, issued time.Time, lifetime time.Duration, sans SANs) *KeyPair {
	t.Helper()
	s, err := NewServing(ca, issued, lifetime, sans)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifies says whether serving chains to one of the CAs in bundle for the
// service name, at now.
func verifies(serving *x509.Certificate, bundle []byte, now time.Time) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(bundle)
	_, err := serving.Verify(x509.VerifyOptions{
		DNSName:     "autocrane-webhook.autocrane-system.svc",
		Roots:       pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func ipsEqual(a, b []net.IP) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
