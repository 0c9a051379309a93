package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// certLifetime covers any test run; the cluster is thrown away after it.
const certLifetime = 7 * 24 * time.Hour

// authority is the cluster's one CA: it signs the serving certificates and
// the client certificates, and the apiserver trusts it for clients.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// leaf describes a certificate the authority issues.
type leaf struct {
	file   string // pki/FILE.crt and pki/FILE.key
	cn     string
	orgs   []string
	server bool
	ips    []string
	dns    []string
}

func newAuthority(now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "autocrane-test-cluster-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA: %w", err)
	}
	return &authority{cert: cert, key: key}, nil
}

func (a *authority) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// issue signs l and writes it and its key under dir.
func (a *authority) issue(dir string, l leaf, serial int64, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the key of %s: %w", l.file, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: l.cn, Organization: l.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     l.dns,
	}
	if l.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	for _, ip := range l.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return fmt.Errorf("signing %s: %w", l.file, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding the key of %s: %w", l.file, err)
	}
	if err := writePEM(filepath.Join(dir, l.file+".crt"), "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, l.file+".key"), "EC PRIVATE KEY", keyDER)
}

func writePEM(file, blockType string, der []byte) error {
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

// writePKI writes the CA, every component's certificate, the
// service-account signing key pair and the kubeconfigs.
func writePKI(c config, now time.Time) error {
	dir := c.path("pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	ca, err := newAuthority(now)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.certPEM(), 0o644); err != nil {
		return fmt.Errorf("writing the CA: %w", err)
	}
	leaves := []leaf{
		{file: "apiserver", cn: "kube-apiserver", server: true,
			ips: []string{c.bridgeIP(), c.serviceIP(1), "127.0.0.1"},
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + clusterDomain, "localhost"}},
		// The apiserver's identity towards the kubelet (logs, exec).
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		{file: "admin", cn: "autocrane-admin", orgs: []string{"system:masters"}},
		// The default RBAC bindings know these names.
		{file: "controller-manager", cn: "system:kube-controller-manager"},
		{file: "scheduler", cn: "system:kube-scheduler"},
		{file: "kubelet", cn: "system:node:" + nodeName, orgs: []string{"system:nodes"}},
		{file: "kube-proxy", cn: "system:kube-proxy"},
	}
	for i, l := range leaves {
		if err := ca.issue(dir, l, int64(i+2), now); err != nil {
			return err
		}
	}
	if err := writeServiceAccountKeys(dir); err != nil {
		return err
	}
	for _, name := range []string{"admin", "controller-manager", "scheduler", "kubelet", "kube-proxy"} {
		file := c.path(name + ".kubeconfig")
		if name == "admin" {
			file = c.kubeconfig()
		}
		if err := writeKubeconfig(file, c.apiServerURL(), ca.certPEM(), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// writeServiceAccountKeys writes the key pair that signs and checks
// service-account tokens (the apiserver signs, the controller manager
// signs for its controllers).
func writeServiceAccountKeys(dir string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("encoding the service-account key: %w", err)
	}
	if err := writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)
}

// writeKubeconfig writes a kubeconfig with a client certificate (paths to
// certFile.crt and .key, embedded so the file can be copied).
func writeKubeconfig(file, server string, caPEM []byte, cert string) error {
	crt, err := os.ReadFile(cert + ".crt")
	if err != nil {
		return fmt.Errorf("reading %s.crt: %w", cert, err)
	}
	key, err := os.ReadFile(cert + ".key")
	if err != nil {
		return fmt.Errorf("reading %s.key: %w", cert, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["autocrane-e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts["autocrane-e2e"] = &clientcmdapi.Context{Cluster: "autocrane-e2e", AuthInfo: "user"}
	cfg.CurrentContext = "autocrane-e2e"
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
