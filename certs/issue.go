package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// caCommonNamePrefix names AutoCrane's CAs; the issuing time follows, so
// two CAs of one rotation are told apart in `openssl x509 -text`.
const caCommonNamePrefix = "autocrane-webhook-ca@"

// NewCA issues a self-signed CA (ECDSA P-256) valid from now for lifetime.
// It may sign only end-entity certificates (path length 0).
func NewCA(now time.Time, lifetime time.Duration) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s%d", caCommonNamePrefix, now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	return sign(tmpl, tmpl, &key.PublicKey, key, key)
}

// NewServing issues a serving certificate (ECDSA P-256, server auth) for
// sans, signed by ca, valid from now for lifetime but never past ca's end.
func NewServing(ca *KeyPair, now time.Time, lifetime time.Duration, sans SANs) (*KeyPair, error) {
	if ca == nil {
		return nil, fmt.Errorf("issue serving certificate: no CA")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	cn := ""
	if len(sans.DNSNames) > 0 {
		cn = sans.DNSNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              sans.DNSNames,
		IPAddresses:           sans.IPAddresses,
	}
	return sign(tmpl, ca.Cert, &key.PublicKey, key, ca.Key)
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey, signer any) (*KeyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return &KeyPair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyID is a subject key identifier: the SHA-256 of the public point,
// truncated to 160 bits as RFC 7093 allows.
func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := pub.Bytes()
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:20]
}

// issuedAt is when a certificate was made: NotBefore without the backdate,
// unless that would leave no lifetime (a certificate not made here).
func issuedAt(c *x509.Certificate) time.Time {
	t := c.NotBefore.Add(backdate)
	if !t.Before(c.NotAfter) {
		return c.NotBefore
	}
	return t
}

// renewAt is two thirds into a certificate's life, counted from issuedAt.
func renewAt(c *x509.Certificate) time.Time {
	start := issuedAt(c)
	return start.Add(c.NotAfter.Sub(start) * 2 / 3)
}
