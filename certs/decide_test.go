package certs

import (
	"errors"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestDecide(t *testing.T) {
	sans := testSANs(t)
	policy := Policy{}.WithDefaults()
	caA := mustCA(t, t0, 365*day)
	servingA := mustServing(t, caA, t0, 90*day, sans)
	rotation := t0.Add(250 * day) // past two thirds of caA's life
	caB := mustCA(t, rotation, 365*day)
	servingB := mustServing(t, caB, rotation.Add(time.Hour), 90*day, sans)
	other := mustCA(t, t0, 365*day)
	servingOther := mustServing(t, other, t0, 90*day, sans)
	otherNames, err := ServiceSANs("other", "autocrane-system", nil)
	if err != nil {
		t.Fatal(err)
	}
	servingOtherNames := mustServing(t, caA, t0, 90*day, otherNames)
	expiredCA := mustCA(t, t0.Add(-400*day), 365*day)
	// A fresh serving certificate from caA late in its life (not due).
	servingALate := mustServing(t, caA, rotation, 90*day, sans)

	steady := State{CA: caA, Serving: servingA}
	tests := map[string]struct {
		noSecret  bool
		state     State
		published bool
		now       time.Time
		want      Action
		reason    Reason
		requeue   time.Duration
	}{
		"create CA and serving certificate as the Secret is missing": {
			noSecret: true, now: t0, want: ActionCreate, reason: ReasonSecretMissing,
		},
		"create as the Secret holds no CA": {
			state: State{Serving: servingA}, now: t0, want: ActionCreate, reason: ReasonCAMissing,
		},
		"create as ca.crt cannot be parsed": {
			state: State{CAErr: errors.New("ca.crt: not a PEM certificate")}, now: t0, want: ActionCreate, reason: ReasonCAInvalid,
		},
		"create as ca.crt is not a CA": {
			state: State{CA: servingA, Serving: servingA}, now: t0, want: ActionCreate, reason: ReasonCAInvalid,
		},
		"create as the CA has expired": {
			state: State{CA: expiredCA}, now: t0, want: ActionCreate, reason: ReasonCAExpired,
		},
		"issue a serving certificate as there is none": {
			state: State{CA: caA}, now: t0, want: ActionIssueServing, reason: ReasonServingMissing,
		},
		"issue a serving certificate as tls.key does not match": {
			state: State{CA: caA, ServingErr: errors.New("tls.key does not hold the private key of tls.crt")}, now: t0,
			want: ActionIssueServing, reason: ReasonServingInvalid,
		},
		"issue a serving certificate as another CA signed it": {
			state: State{CA: caA, Serving: servingOther}, now: t0, want: ActionIssueServing, reason: ReasonServingNotFromCA,
		},
		"issue a serving certificate as the names changed": {
			state: State{CA: caA, Serving: servingOtherNames}, now: t0, want: ActionIssueServing, reason: ReasonServingNamesChanged,
		},
		"issue a serving certificate as it expired": {
			state: steady, now: t0.Add(91 * day), want: ActionIssueServing, reason: ReasonServingExpired,
		},
		"renew the serving certificate at two thirds of its life": {
			state: steady, now: t0.Add(60 * day), want: ActionIssueServing, reason: ReasonServingRenewalDue,
		},
		"nothing to do before two thirds; look again at the serving renewal": {
			state: steady, now: t0.Add(day), want: ActionNone, reason: ReasonUpToDate, requeue: 59 * day,
		},
		"start a CA rotation at two thirds of the CA's life": {
			state: State{CA: caA, Serving: servingALate}, now: rotation, want: ActionStartCARotation, reason: ReasonCARenewalDue,
		},
		"wait while the webhook configurations do not trust the next CA": {
			state: State{CA: caA, Serving: servingALate, NextCA: caB}, now: rotation,
			want: ActionNone, reason: ReasonWaitingForBundle, requeue: waitForBundle,
		},
		"record when the webhook configurations trust the next CA": {
			state: State{CA: caA, Serving: servingALate, NextCA: caB}, published: true, now: rotation,
			want: ActionMarkNextCAPublished, reason: ReasonNextCATrusted,
		},
		"wait an overlap before the next CA signs": {
			state: State{CA: caA, Serving: servingALate, NextCA: caB, NextCAPublishedAt: rotation}, published: true,
			now: rotation.Add(4 * time.Minute), want: ActionNone, reason: ReasonWaitingForOverlap, requeue: 6 * time.Minute,
		},
		"promote the next CA once an overlap has passed": {
			state: State{CA: caA, Serving: servingALate, NextCA: caB, NextCAPublishedAt: rotation}, published: true,
			now: rotation.Add(10 * time.Minute), want: ActionPromoteNextCA, reason: ReasonNextCAOverlapEnded,
		},
		"start the rotation again as the next CA is unreadable": {
			state: State{CA: caA, Serving: servingALate, NextCAErr: errors.New("ca-next.crt: not a PEM certificate")},
			now:   rotation, want: ActionStartCARotation, reason: ReasonNextCAInvalid,
		},
		"keep trusting the previous CA for an overlap": {
			state: State{CA: caB, Serving: servingB, PreviousCA: caA.Cert, PreviousCARetiredAt: rotation.Add(time.Hour)},
			now:   rotation.Add(time.Hour + time.Minute), want: ActionNone, reason: ReasonWaitingForOverlap, requeue: 9 * time.Minute,
		},
		"drop the previous CA once an overlap has passed": {
			state: State{CA: caB, Serving: servingB, PreviousCA: caA.Cert, PreviousCARetiredAt: rotation.Add(time.Hour)},
			now:   rotation.Add(time.Hour + 10*time.Minute), want: ActionDropPreviousCA, reason: ReasonPreviousCAOverlapEnd,
		},
		"drop a previous CA whose retirement time is unknown": {
			state: State{CA: caB, Serving: servingB, PreviousCA: caA.Cert},
			now:   rotation.Add(time.Hour), want: ActionDropPreviousCA, reason: ReasonPreviousCAOverlapEnd,
		},
		"drop an unreadable previous CA": {
			state: State{CA: caB, Serving: servingB, PreviousCAErr: errors.New("ca-previous.crt: not a PEM certificate")},
			now:   rotation.Add(time.Hour), want: ActionDropPreviousCA, reason: ReasonPreviousCAInvalid,
		},
		"renew a serving certificate that is due even while a rotation waits": {
			state: State{CA: caA, Serving: servingA, NextCA: caB, NextCAPublishedAt: t0.Add(60 * day)}, published: true,
			now: t0.Add(60*day + time.Minute), want: ActionIssueServing, reason: ReasonServingRenewalDue,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(tc.now)
			got := Decide(Input{
				SecretExists:    !tc.noSecret,
				State:           tc.state,
				BundlePublished: tc.published,
				Now:             clk.Now(),
				Policy:          policy,
				SANs:            sans,
			})
			if got.Action != tc.want || got.Reason != tc.reason {
				t.Fatalf("Decide = %s (%s: %s), want %s (%s)", got.Action, got.Reason, got.Message, tc.want, tc.reason)
			}
			if got.Message == "" {
				t.Errorf("Decide gave no message")
			}
			if got.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %s, want %s", got.RequeueAfter, tc.requeue)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := map[string]struct {
		policy  Policy
		wantErr bool
	}{
		"defaults are valid":                        {policy: Policy{}.WithDefaults()},
		"short test lifetimes are valid":            {policy: Policy{CALifetime: 30 * time.Second, ServingLifetime: 12 * time.Second, CAOverlap: 2 * time.Second}},
		"an overlap of a sixth of the CA's life":    {policy: Policy{CALifetime: 60 * time.Minute, ServingLifetime: time.Minute, CAOverlap: 10 * time.Minute}, wantErr: true},
		"a negative serving lifetime":               {policy: Policy{CALifetime: day, ServingLifetime: -1, CAOverlap: time.Minute}, wantErr: true},
		"a zero overlap after defaults are skipped": {policy: Policy{CALifetime: day, ServingLifetime: day}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.policy.Validate(); (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, want error: %v", err, tc.wantErr)
			}
		})
	}
}

func TestServiceSANs(t *testing.T) {
	got, err := ServiceSANs("hook", "sys", []string{" 127.0.0.1", "Hook.Example.com", "::1", "127.0.0.1", ""})
	if err != nil {
		t.Fatal(err)
	}
	wantDNS := []string{"hook.example.com", "hook.sys.svc", "hook.sys.svc.cluster.local"}
	if len(got.DNSNames) != len(wantDNS) {
		t.Fatalf("DNSNames = %v, want %v", got.DNSNames, wantDNS)
	}
	for i := range wantDNS {
		if got.DNSNames[i] != wantDNS[i] {
			t.Fatalf("DNSNames = %v, want %v", got.DNSNames, wantDNS)
		}
	}
	if len(got.IPAddresses) != 2 || got.IPAddresses[0].String() != "127.0.0.1" || got.IPAddresses[1].String() != "::1" {
		t.Errorf("IPAddresses = %v, want [127.0.0.1 ::1]", got.IPAddresses)
	}
	for _, bad := range [][]string{{"http://x"}, {"a b"}} {
		if _, err := ServiceSANs("hook", "sys", bad); err == nil {
			t.Errorf("ServiceSANs(%q) = nil error", bad)
		}
	}
	if _, err := ServiceSANs("", "sys", nil); err == nil {
		t.Error("ServiceSANs without a service = nil error")
	}
}

// FuzzServiceSANs: the names come from flags; whatever is accepted must
// issue a certificate that carries exactly those names.
func FuzzServiceSANs(f *testing.F) {
	f.Add("autocrane-webhook", "autocrane-system", "127.0.0.1,hook.example.com")
	f.Add("a", "b", "::1, ,x")
	f.Add("s", "n", "http://x")
	ca := mustCA(f, t0, 365*day)
	f.Fuzz(func(t *testing.T, service, namespace, extra string) {
		sans, err := ServiceSANs(service, namespace, strings.Split(extra, ","))
		if err != nil {
			return
		}
		serving, err := NewServing(ca, t0, day, sans)
		if err != nil {
			return // names x509 refuses to encode
		}
		if !sans.covers(serving.Cert.DNSNames, serving.Cert.IPAddresses) {
			t.Fatalf("issued for %v %v, asked for %v %v", serving.Cert.DNSNames, serving.Cert.IPAddresses, sans.DNSNames, sans.IPAddresses)
		}
	})
}
