package certs

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/autocrane/autocrane/spec"
)

func TestEncodeParseRoundTrip(t *testing.T) {
	sans := testSANs(t)
	ca := mustCA(t, t0, 365*day)
	next := mustCA(t, t0.Add(250*day), 365*day)
	prev := mustCA(t, t0.Add(-200*day), 365*day)
	in := State{
		CA:                  ca,
		Serving:             mustServing(t, ca, t0, 90*day, sans),
		NextCA:              next,
		PreviousCA:          prev.Cert,
		NextCAPublishedAt:   t0.Add(time.Hour),
		PreviousCARetiredAt: t0.Add(2 * time.Hour),
	}
	data, annotations := Encode(in)
	for _, k := range []string{KeyCACert, KeyCAKey, KeyServingCert, KeyServingKey, KeyNextCACert, KeyNextCAKey, KeyPreviousCACert} {
		if len(data[k]) == 0 {
			t.Errorf("Encode left %s empty", k)
		}
	}
	out := Parse(data, annotations)
	for name, err := range map[string]error{"CA": out.CAErr, "serving": out.ServingErr, "next": out.NextCAErr, "previous": out.PreviousCAErr} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !out.CA.Cert.Equal(ca.Cert) || !out.NextCA.Cert.Equal(next.Cert) || !out.PreviousCA.Equal(prev.Cert) ||
		!out.Serving.Cert.Equal(in.Serving.Cert) {
		t.Error("Parse(Encode(s)) changed a certificate")
	}
	if !out.NextCAPublishedAt.Equal(in.NextCAPublishedAt) || !out.PreviousCARetiredAt.Equal(in.PreviousCARetiredAt) {
		t.Errorf("times = %s, %s; want %s, %s", out.NextCAPublishedAt, out.PreviousCARetiredAt, in.NextCAPublishedAt, in.PreviousCARetiredAt)
	}
	if got := out.Serving.Cert.DNSNames; strings.Join(got, ",") != strings.Join(sans.DNSNames, ",") {
		t.Errorf("serving DNS names = %v, want %v", got, sans.DNSNames)
	}
	if !ipsEqual(out.Serving.Cert.IPAddresses, sans.IPAddresses) {
		t.Errorf("serving IPs = %v, want %v", out.Serving.Cert.IPAddresses, sans.IPAddresses)
	}
	// Empty times ask for the annotations to be removed.
	_, ann := Encode(State{CA: ca})
	if ann[spec.AnnotationCANextPublishedAt] != "" || ann[spec.AnnotationCAPreviousRetiredAt] != "" {
		t.Errorf("Encode without times = %v, want empty values", ann)
	}
}

func TestParseReportsEachBrokenPart(t *testing.T) {
	ca := mustCA(t, t0, 365*day)
	other := mustCA(t, t0, 365*day)
	tests := map[string]struct {
		data    map[string][]byte
		wantErr string
		field   func(State) error
	}{
		"a certificate without its key": {
			data:    map[string][]byte{KeyCACert: ca.CertPEM},
			wantErr: "ca.crt and ca.key: both must be present",
			field:   func(s State) error { return s.CAErr },
		},
		"a key that is not the certificate's": {
			data:    map[string][]byte{KeyCACert: ca.CertPEM, KeyCAKey: other.KeyPEM},
			wantErr: "ca.key does not hold the private key of ca.crt",
			field:   func(s State) error { return s.CAErr },
		},
		"garbage instead of a certificate": {
			data:    map[string][]byte{KeyServingCert: []byte("garbage"), KeyServingKey: ca.KeyPEM},
			wantErr: "tls.crt: not a PEM certificate",
			field:   func(s State) error { return s.ServingErr },
		},
		"two certificates where one belongs": {
			data:    map[string][]byte{KeyNextCACert: append(bytes.Clone(ca.CertPEM), other.CertPEM...), KeyNextCAKey: ca.KeyPEM},
			wantErr: "ca-next.crt: more than one PEM block",
			field:   func(s State) error { return s.NextCAErr },
		},
		"a certificate where the key belongs": {
			data:    map[string][]byte{KeyCACert: ca.CertPEM, KeyCAKey: ca.CertPEM},
			wantErr: `ca.key: PEM block "CERTIFICATE" is not a private key`,
			field:   func(s State) error { return s.CAErr },
		},
		"a broken previous CA": {
			data:    map[string][]byte{KeyPreviousCACert: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
			wantErr: "ca-previous.crt: parse certificate",
			field:   func(s State) error { return s.PreviousCAErr },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.field(Parse(tc.data, nil))
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to start with %q", err, tc.wantErr)
			}
		})
	}
}

// TestTrustBundleIsStableAcrossPromotion: promoting moves CAs between keys
// but trusts the same set, so the caBundle bytes must not change (no
// needless patch, and a stale reader publishes the same bytes).
func TestTrustBundleIsStableAcrossPromotion(t *testing.T) {
	sans := testSANs(t)
	a := mustCA(t, t0, 365*day)
	b := mustCA(t, t0.Add(250*day), 365*day)
	before := State{CA: a, Serving: mustServing(t, a, t0, 90*day, sans), NextCA: b, NextCAPublishedAt: t0}
	after, err := Apply(before, ActionPromoteNextCA, t0.Add(time.Hour), Policy{}.WithDefaults(), sans)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(TrustBundle(before), TrustBundle(after)) {
		t.Error("the bundle changed on promotion")
	}
	if n := bytes.Count(TrustBundle(after), []byte("BEGIN CERTIFICATE")); n != 2 {
		t.Errorf("bundle holds %d certificates, want 2", n)
	}
	if TrustBundle(State{}) != nil {
		t.Error("TrustBundle of an empty state is not nil")
	}
}

func FuzzParse(f *testing.F) {
	sans := testSANs(f)
	ca := mustCA(f, t0, 365*day)
	serving := mustServing(f, ca, t0, 90*day, sans)
	f.Add(ca.CertPEM, ca.KeyPEM, serving.CertPEM, serving.KeyPEM, "2030-01-01T00:00:00Z")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n"), []byte{}, []byte("x"), "yesterday")
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n"), serving.KeyPEM, serving.CertPEM, ca.KeyPEM, "")
	f.Fuzz(func(t *testing.T, caCert, caKey, servingCert, servingKey []byte, published string) {
		data := map[string][]byte{KeyCACert: caCert, KeyCAKey: caKey, KeyServingCert: servingCert,
			KeyServingKey: servingKey, KeyNextCACert: servingCert, KeyNextCAKey: caKey, KeyPreviousCACert: caCert}
		s := Parse(data, map[string]string{spec.AnnotationCANextPublishedAt: published})
		for _, p := range []*KeyPair{s.CA, s.Serving, s.NextCA} {
			if p != nil && (p.Cert == nil || p.Key == nil) {
				t.Fatal("Parse returned a half pair")
			}
		}
		// Whatever Parse accepts, Decide must answer without panicking,
		// and what Encode writes back must parse the same way.
		d := Decide(Input{SecretExists: true, State: s, Now: t0, Policy: Policy{}.WithDefaults(), SANs: sans})
		if d.Action == "" || d.Reason == "" {
			t.Fatalf("Decide gave an empty answer: %+v", d)
		}
		again := Parse(Encode(s))
		if (again.CA == nil) != (s.CA == nil) || (again.Serving == nil) != (s.Serving == nil) {
			t.Fatal("Encode lost or invented a usable pair")
		}
		_ = TrustBundle(s)
	})
}
