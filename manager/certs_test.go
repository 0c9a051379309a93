package manager

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/certs"
)

func TestNewCertSetupRejectsBadOptions(t *testing.T) {
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"an unknown mode": {
			opts: Options{CertMode: "vault"}, wantErr: `certificate mode "vault": must be cert-manager or self-managed`,
		},
		"self-managed without a namespace": {
			opts: Options{CertMode: CertModeSelfManaged}, wantErr: "the manager's namespace is required",
		},
		"self-managed with a bad extra name": {
			opts:    Options{CertMode: CertModeSelfManaged, Namespace: "ns", SelfManagedCerts: SelfManagedCerts{ExtraSANs: []string{"http://x"}}},
			wantErr: `extra SAN "http://x"`,
		},
		"self-managed with an overlap too long": {
			opts:    Options{CertMode: CertModeSelfManaged, Namespace: "ns", SelfManagedCerts: SelfManagedCerts{Policy: certs.Policy{CALifetime: time.Hour, CAOverlap: time.Hour}}},
			wantErr: "must be less than a sixth of the CA lifetime",
		},
		"cert-manager mode without the files": {
			opts: Options{CertDir: filepath.Join(t.TempDir(), "none")}, wantErr: "load webhook certificate from",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := newCertSetup(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("newCertSetup = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestSelfManagedCacheWatchesOneSecretByName keeps the other cache
// settings and restricts Secrets to one name in one namespace.
func TestSelfManagedCacheWatchesOneSecretByName(t *testing.T) {
	c, err := newCertSetup(Options{CertMode: CertModeSelfManaged, Namespace: "autocrane-system"})
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	got := c.withCacheByObject(map[client.Object]cache.ByObject{pod: {}})
	if len(got) != 4 {
		t.Fatalf("%d cache entries, want the pod's and three", len(got))
	}
	if _, ok := got[pod]; !ok {
		t.Error("the pod entry was dropped")
	}
	for obj, by := range got {
		if _, ok := obj.(*corev1.Secret); !ok {
			continue
		}
		if by.Field == nil || by.Field.String() != "metadata.name=autocrane-webhook-tls" {
			t.Errorf("Secret field selector = %v", by.Field)
		}
		if _, ok := by.Namespaces["autocrane-system"]; !ok || len(by.Namespaces) != 1 {
			t.Errorf("Secret namespaces = %v", by.Namespaces)
		}
	}
	cm, err := newCertSetup(Options{CertDir: writeKeyPair(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.withCacheByObject(nil); got != nil {
		t.Errorf("cert-manager mode changed the cache: %v", got)
	}
}

func writeKeyPair(t *testing.T) string {
	t.Helper()
	ca, err := certs.NewCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sans, err := certs.ServiceSANs("autocrane-webhook", "ns", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := certs.NewServing(ca, time.Now(), time.Hour, sans)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"tls.crt": s.CertPEM, "tls.key": s.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
