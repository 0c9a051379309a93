package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/autocrane/autocrane/certs"
)

var doctorT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func TestVerifyChain(t *testing.T) {
	sans, err := certs.ServiceSANs("autocrane-webhook", "autocrane-system", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.NewCA(doctorT0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewCA(doctorT0, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := certs.NewServing(ca, doctorT0, 90*24*time.Hour, sans)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := parseChain(serving.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	both := append(bytes.Clone(other.CertPEM), ca.CertPEM...)
	tests := map[string]struct {
		bundle  []byte
		host    string
		now     time.Time
		wantErr string
	}{
		"the signing CA verifies the service name":       {bundle: ca.CertPEM, host: "autocrane-webhook.autocrane-system.svc", now: doctorT0},
		"a bundle of two CAs verifies":                   {bundle: both, host: "autocrane-webhook.autocrane-system.svc", now: doctorT0},
		"the IP of a URL webhook verifies":               {bundle: ca.CertPEM, host: "127.0.0.1", now: doctorT0},
		"another CA does not":                            {bundle: other.CertPEM, host: "127.0.0.1", now: doctorT0, wantErr: "certificate signed by unknown authority"},
		"a name the certificate lacks does not":          {bundle: ca.CertPEM, host: "other.autocrane-system.svc", now: doctorT0, wantErr: "certificate is valid for"},
		"an expired certificate does not":                {bundle: ca.CertPEM, host: "127.0.0.1", now: doctorT0.Add(91 * 24 * time.Hour), wantErr: "expired"},
		"a bundle without certificates is named as such": {bundle: []byte("not PEM"), host: "127.0.0.1", now: doctorT0, wantErr: "the caBundle holds no PEM certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := verifyChain(tc.bundle, chain, tc.host, tc.now)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("verifyChain = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestHookEntryEndpoint(t *testing.T) {
	tests := map[string]struct {
		cc               admissionregistrationv1.WebhookClientConfig
		wantHost, wantAt string
		wantErr          bool
	}{
		"a Service on the default port": {
			cc:       admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "hook"}},
			wantHost: "hook.ns.svc", wantAt: "hook.ns.svc:443",
		},
		"a Service on another port": {
			cc:       admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "hook", Port: ptr.To[int32](9443)}},
			wantHost: "hook.ns.svc", wantAt: "hook.ns.svc:9443",
		},
		"a URL with a port and envtest's double slash": {
			cc:       admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:8443//mutate-v1-pod")},
			wantHost: "127.0.0.1", wantAt: "127.0.0.1:8443",
		},
		"a URL without a port": {
			cc:       admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://hook.example.com/validate")},
			wantHost: "hook.example.com", wantAt: "hook.example.com:443",
		},
		"an IPv6 URL": {
			cc:       admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://[::1]:9443/x")},
			wantHost: "::1", wantAt: "[::1]:9443",
		},
		"neither": {wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			host, addr, err := hookEntry{client: tc.cc}.endpoint()
			if (err != nil) != tc.wantErr || host != tc.wantHost || addr != tc.wantAt {
				t.Fatalf("endpoint() = %q, %q, %v; want %q, %q, error %v", host, addr, err, tc.wantHost, tc.wantAt, tc.wantErr)
			}
		})
	}
}

func TestReportText(t *testing.T) {
	var r Report
	r.ok("webhook configuration autocrane-mutating", "MutatingWebhookConfiguration with 2 webhooks")
	r.warn("certificate mode", "cannot tell", "pass --cert-mode")
	r.fail("caBundle autocrane-mutating/namespace.inject.autocrane.io", "empty", "check cainjector")
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := `OK    webhook configuration autocrane-mutating: MutatingWebhookConfiguration with 2 webhooks
WARN  certificate mode: cannot tell (hint: pass --cert-mode)
FAIL  caBundle autocrane-mutating/namespace.inject.autocrane.io: empty (hint: check cainjector)
1 of 3 checks failed
`
	if b.String() != want {
		t.Errorf("WriteText =\n%s\nwant\n%s", b.String(), want)
	}
	if r.Failed() != 1 || len(r.Find("caBundle ")) != 1 {
		t.Errorf("Failed() = %d, Find = %v", r.Failed(), r.Find("caBundle "))
	}
}

func TestManagerPermissions(t *testing.T) {
	opts := DoctorOptions{}.withDefaults()
	base := ManagerPermissions(opts, DoctorCertModeCertManager)
	self := ManagerPermissions(opts, DoctorCertModeSelfManaged)
	if len(self) != len(base)+4 {
		t.Errorf("self-managed adds %d permissions, want 4 (Secret create, Secret by name, two configurations)", len(self)-len(base))
	}
	var names []string
	for _, p := range self {
		names = append(names, p.String())
	}
	for _, want := range []string{
		"pods/eviction in all namespaces",
		"leases.coordination.k8s.io autocrane-manager.autocrane.io in namespace autocrane-system",
		"secrets autocrane-webhook-tls in namespace autocrane-system",
		"mutatingwebhookconfigurations.admissionregistration.k8s.io autocrane-mutating in all namespaces",
	} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("no permission %q in %q", want, names)
		}
	}
}

func TestCertificateRef(t *testing.T) {
	d := &doctor{opts: DoctorOptions{}.withDefaults()}
	if got := d.certificateRef().String(); got != "autocrane-system/autocrane-webhook" {
		t.Errorf("without annotation: %s", got)
	}
	d.validating = &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{
		Annotations: map[string]string{injectCAFromAnnotation: "certs/serving"}}}
	if got := d.certificateRef().String(); got != "certs/serving" {
		t.Errorf("with annotation: %s", got)
	}
}

// FuzzCABundle feeds arbitrary bytes as a served chain and as a caBundle:
// the doctor reads both from the cluster, so neither may panic it.
func FuzzCABundle(f *testing.F) {
	ca, err := certs.NewCA(doctorT0, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.CertPEM, ca.CertPEM, "127.0.0.1")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte{}, "")
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"), []byte("x"), "hook.ns.svc")
	f.Fuzz(func(t *testing.T, chainPEM, bundle []byte, host string) {
		chain, err := parseChain(chainPEM)
		if err != nil {
			return
		}
		if len(chain) == 0 {
			t.Fatal("parseChain returned no certificate and no error")
		}
		_ = verifyChain(bundle, chain, host, doctorT0)
		_ = certNames(chain[0])
	})
}
