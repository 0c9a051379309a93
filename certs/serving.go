package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
)

// ErrNoCertificate is GetCertificate's error before any certificate was
// loaded; the TLS handshake fails with it.
var ErrNoCertificate = errors.New("no webhook serving certificate loaded yet")

// Source is anything that serves the webhook's certificate: Serving in
// self-managed mode, controller-runtime's certwatcher in cert-manager mode.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// Serving serves the certificate of the self-managed Secret. Update is fed
// from the manager's informer on that Secret, on every replica, so a new
// certificate is served as soon as the cache sees it (no volume lag).
// Its methods are safe for concurrent use.
type Serving struct {
	current atomic.Pointer[tls.Certificate]
}

// GetCertificate returns the last loaded certificate, or ErrNoCertificate.
func (s *Serving) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.current.Load()
	if c == nil {
		return nil, ErrNoCertificate
	}
	return c, nil
}

// Update loads tls.crt and tls.key from the Secret. On error the previous
// certificate stays in service (a half-written or broken Secret must not
// take the webhook down) and the error says why.
func (s *Serving) Update(secret *corev1.Secret) error {
	pair, err := LoadKeyPair(secret.Data[KeyServingCert], secret.Data[KeyServingKey])
	if err != nil {
		return fmt.Errorf("Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	if old := s.current.Load(); old != nil && old.Leaf.Equal(pair.Leaf) {
		return nil
	}
	s.current.Store(pair)
	return nil
}

// LoadKeyPair parses a PEM certificate (chain) and key into a
// tls.Certificate with Leaf set.
func LoadKeyPair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, fmt.Errorf("%s or %s is empty", KeyServingCert, KeyServingKey)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", KeyServingCert, KeyServingKey, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse %s: %w", KeyServingCert, err)
		}
	}
	return &pair, nil
}

// Leaf returns the certificate a source serves now, or nil.
func Leaf(src Source) *x509.Certificate {
	c, err := src.GetCertificate(nil)
	if err != nil || c == nil {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// ReadyChecker is a readyz check: it fails until the source serves a
// certificate that is valid now.
func ReadyChecker(src Source, clk clock.PassiveClock) func(*http.Request) error {
	return func(*http.Request) error {
		leaf := Leaf(src)
		if leaf == nil {
			return ErrNoCertificate
		}
		now := clk.Now()
		if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
			return fmt.Errorf("webhook serving certificate is valid from %s to %s, not now",
				stamp(leaf.NotBefore), stamp(leaf.NotAfter))
		}
		return nil
	}
}
