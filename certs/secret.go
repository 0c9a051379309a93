package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// Keys of the self-managed TLS Secret (type kubernetes.io/tls). tls.crt and
// tls.key are what every replica serves; the rest is the leader's.
//
//	tls.crt          serving certificate, signed by ca.crt
//	tls.key          its private key
//	ca.crt           the CA that signs (and signed tls.crt)
//	ca.key           its private key
//	ca-next.crt      during a rotation: the new CA, trusted, not yet signing
//	ca-next.key      its private key
//	ca-previous.crt  after a rotation: the old CA, still trusted for a while
//
// The webhook configurations' caBundle is ca.crt, ca-next.crt and
// ca-previous.crt (TrustBundle).
const (
	KeyServingCert    = "tls.crt"
	KeyServingKey     = "tls.key"
	KeyCACert         = "ca.crt"
	KeyCAKey          = "ca.key"
	KeyNextCACert     = "ca-next.crt"
	KeyNextCAKey      = "ca-next.key"
	KeyPreviousCACert = "ca-previous.crt"
)

// KeyPair is a parsed certificate with its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM and KeyPEM are the encoded forms, as stored.
	CertPEM []byte
	KeyPEM  []byte
}

// State is what the Secret holds, parsed. A nil pair is either absent or
// unusable; its error field tells which (nil when absent).
type State struct {
	CA         *KeyPair
	Serving    *KeyPair
	NextCA     *KeyPair
	PreviousCA *x509.Certificate

	CAErr, ServingErr, NextCAErr, PreviousCAErr error

	// NextCAPublishedAt is when the webhook configurations were seen
	// trusting NextCA; zero while they have not been.
	NextCAPublishedAt time.Time
	// PreviousCARetiredAt is when PreviousCA stopped signing.
	PreviousCARetiredAt time.Time
}

// Parse reads a Secret's data and annotations. It never fails as a whole:
// each part that cannot be used is left nil with its error set, so that
// Decide can repair exactly that part.
func Parse(data map[string][]byte, annotations map[string]string) State {
	var s State
	s.CA, s.CAErr = parsePair(data, KeyCACert, KeyCAKey)
	s.Serving, s.ServingErr = parsePair(data, KeyServingCert, KeyServingKey)
	s.NextCA, s.NextCAErr = parsePair(data, KeyNextCACert, KeyNextCAKey)
	if raw, ok := data[KeyPreviousCACert]; ok {
		s.PreviousCA, s.PreviousCAErr = parseCert(raw)
		if s.PreviousCAErr != nil {
			s.PreviousCAErr = fmt.Errorf("%s: %w", KeyPreviousCACert, s.PreviousCAErr)
		}
	}
	s.NextCAPublishedAt = parseTime(annotations[spec.AnnotationCANextPublishedAt])
	s.PreviousCARetiredAt = parseTime(annotations[spec.AnnotationCAPreviousRetiredAt])
	return s
}

// parsePair returns nil, nil when neither key is present.
func parsePair(data map[string][]byte, certKey, keyKey string) (*KeyPair, error) {
	certPEM, hasCert := data[certKey]
	keyPEM, hasKey := data[keyKey]
	if !hasCert && !hasKey {
		return nil, nil
	}
	if !hasCert || !hasKey {
		return nil, fmt.Errorf("%s and %s: both must be present", certKey, keyKey)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certKey, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyKey, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s does not hold the private key of %s", keyKey, certKey)
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// parseCert reads exactly one PEM CERTIFICATE block.
func parseCert(raw []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("more than one PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseKey reads a PKCS#8, SEC 1 (EC) or PKCS#1 (RSA) private key.
func parseKey(raw []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PKCS#8 key: %w", err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key of type %T cannot sign", k)
		}
		return signer, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse EC key: %w", err)
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	// Every public key type of crypto/* has this method.
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// parseTime reads an RFC 3339 annotation; anything else is "never".
func parseTime(v string) time.Time {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Encode is the inverse of Parse for the usable parts: it returns the
// Secret data and the values of the two rotation annotations (empty: the
// annotation must be removed).
func Encode(s State) (data map[string][]byte, annotations map[string]string) {
	data = map[string][]byte{}
	put := func(p *KeyPair, certKey, keyKey string) {
		if p != nil {
			data[certKey], data[keyKey] = p.CertPEM, p.KeyPEM
		}
	}
	put(s.CA, KeyCACert, KeyCAKey)
	put(s.Serving, KeyServingCert, KeyServingKey)
	put(s.NextCA, KeyNextCACert, KeyNextCAKey)
	if s.PreviousCA != nil {
		data[KeyPreviousCACert] = encodeCert(s.PreviousCA)
	}
	annotations = map[string]string{
		spec.AnnotationCANextPublishedAt:   formatTime(s.NextCAPublishedAt),
		spec.AnnotationCAPreviousRetiredAt: formatTime(s.PreviousCARetiredAt),
	}
	return data, annotations
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// TrustBundle is the caBundle the webhook configurations need: every CA
// the Secret holds (current, next and previous), oldest first, so the
// bytes do not change when a rotation only moves a CA from one key to
// another. Nil when the Secret holds no CA.
func TrustBundle(s State) []byte {
	var cas []*x509.Certificate
	for _, p := range []*KeyPair{s.CA, s.NextCA} {
		if p != nil {
			cas = append(cas, p.Cert)
		}
	}
	if s.PreviousCA != nil {
		cas = append(cas, s.PreviousCA)
	}
	slices.SortFunc(cas, func(a, b *x509.Certificate) int {
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
	cas = slices.CompactFunc(cas, func(a, b *x509.Certificate) bool { return a.Equal(b) })
	var out []byte
	for _, c := range cas {
		out = append(out, encodeCert(c)...)
	}
	return out
}
