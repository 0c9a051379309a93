package certs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

func tlsSecret(p *KeyPair) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testSecret.Namespace, Name: testSecret.Name},
		Data:       map[string][]byte{KeyServingCert: p.CertPEM, KeyServingKey: p.KeyPEM},
	}
}

func TestServingKeepsTheLastGoodCertificate(t *testing.T) {
	sans := testSANs(t)
	ca := mustCA(t, t0, 365*day)
	first := mustServing(t, ca, t0, 90*day, sans)
	second := mustServing(t, ca, t0.Add(day), 90*day, sans)
	var s Serving
	if _, err := s.GetCertificate(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("GetCertificate before any load = %v, want ErrNoCertificate", err)
	}
	if err := s.Update(tlsSecret(first)); err != nil {
		t.Fatal(err)
	}
	if got := Leaf(&s); !got.Equal(first.Cert) {
		t.Fatal("serving something else than the loaded certificate")
	}
	broken := tlsSecret(first)
	broken.Data[KeyServingKey] = second.KeyPEM
	if err := s.Update(broken); err == nil {
		t.Fatal("Update accepted a key that is not the certificate's")
	}
	if got := Leaf(&s); !got.Equal(first.Cert) {
		t.Fatal("a broken Secret replaced the served certificate")
	}
	if err := s.Update(tlsSecret(second)); err != nil {
		t.Fatal(err)
	}
	if got := Leaf(&s); !got.Equal(second.Cert) {
		t.Fatal("the new certificate is not served")
	}
}

func TestReadyChecker(t *testing.T) {
	ca := mustCA(t, t0, 365*day)
	serving := mustServing(t, ca, t0, 90*day, testSANs(t))
	loaded := &Serving{}
	if err := loaded.Update(tlsSecret(serving)); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		src     Source
		now     time.Time
		wantErr string
	}{
		"ready with a valid certificate":        {src: loaded, now: t0.Add(day)},
		"not ready before any certificate":      {src: &Serving{}, now: t0, wantErr: "no webhook serving certificate loaded yet"},
		"not ready with an expired certificate": {src: loaded, now: t0.Add(91 * day), wantErr: "webhook serving certificate is valid from 2029-12-31T23:55:00Z to 2030-04-01T00:00:00Z, not now"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ReadyChecker(tc.src, clocktesting.NewFakeClock(tc.now))(nil)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("check = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestExpiryCollector(t *testing.T) {
	ca := mustCA(t, t0, 365*day)
	serving := mustServing(t, ca, t0, 90*day, testSANs(t))
	var s Serving
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewExpiryCollector(&s))
	if n, err := testutil.GatherAndCount(reg, ExpiryMetricName); err != nil || n != 0 {
		t.Fatalf("before a certificate: %d series (%v), want none", n, err)
	}
	if err := s.Update(tlsSecret(serving)); err != nil {
		t.Fatal(err)
	}
	want := `# HELP autocrane_webhook_certificate_expiry_timestamp_seconds Expiry (NotAfter, Unix seconds) of the certificate the webhook server serves now; absent until one is loaded.
# TYPE autocrane_webhook_certificate_expiry_timestamp_seconds gauge
autocrane_webhook_certificate_expiry_timestamp_seconds 1.901232e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), ExpiryMetricName); err != nil {
		t.Fatal(err)
	}
}

// TestRotatorStartRenewsOnItsTimer runs the loop itself on a fake clock:
// it creates the Secret, sleeps until the serving renewal, renews, and
// stops with its context.
func TestRotatorStartRenewsOnItsTimer(t *testing.T) {
	m, v := testConfigs()
	c := fakeClient(t, m, v)
	clk := clocktesting.NewFakeClock(t0)
	r := newTestRotator(t, c, clk, Policy{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()

	servingNow := func() *corev1.Secret {
		var s corev1.Secret
		if err := c.Get(ctx, testSecret, &s); err != nil {
			return nil
		}
		return &s
	}
	// The loop sleeps on the fake clock once the certificates are valid.
	waitFor(t, "the Secret and a sleeping loop", func() bool { return servingNow() != nil && clk.HasWaiters() })
	first := Parse(servingNow().Data, nil).Serving.Cert
	clk.Step(61 * day)
	waitFor(t, "a renewed serving certificate", func() bool {
		s := servingNow()
		p := Parse(s.Data, nil)
		return p.Serving != nil && !p.Serving.Cert.Equal(first)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
}

// waitFor polls cond (real time: it waits for another goroutine, not for
// the clock) with a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
