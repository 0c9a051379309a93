package certs

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Action is what Decide asks the Rotator to do to the Secret.
type Action string

// The actions, in the order of a CA rotation's life:
//
//	steady      ca.crt=A  tls.crt<-A                         bundle A
//	start       ca.crt=A  tls.crt<-A  ca-next.crt=B          bundle A+B
//	published   ... and the time every webhook configuration trusted A+B
//	(one overlap later)
//	promote     ca.crt=B  tls.crt<-B  ca-previous.crt=A      bundle A+B
//	(one overlap later)
//	drop        ca.crt=B  tls.crt<-B                         bundle B
//
// B signs only after the API servers have trusted it for an overlap, and A
// leaves the bundle only after every replica has had an overlap to load
// the certificate signed by B, so no admission call fails on the way.
const (
	// ActionNone: nothing to do until Decision.RequeueAfter.
	ActionNone Action = "none"
	// ActionCreate: a new CA and serving certificate; the rest is dropped.
	ActionCreate Action = "create"
	// ActionIssueServing: a new serving certificate from the current CA.
	ActionIssueServing Action = "issue-serving"
	// ActionStartCARotation: a new CA in ca-next.crt, trusted, not signing.
	ActionStartCARotation Action = "start-ca-rotation"
	// ActionMarkNextCAPublished: record that the webhook configurations
	// trust the next CA; the overlap counts from now.
	ActionMarkNextCAPublished Action = "mark-next-ca-published"
	// ActionPromoteNextCA: the next CA signs a new serving certificate; the
	// old CA moves to ca-previous.crt.
	ActionPromoteNextCA Action = "promote-next-ca"
	// ActionDropPreviousCA: the old CA leaves the bundle.
	ActionDropPreviousCA Action = "drop-previous-ca"
)

// Reason is why Decide chose an action: a fixed word, safe for logs and
// metric labels.
type Reason string

// The reasons.
const (
	ReasonSecretMissing        Reason = "SecretMissing"
	ReasonCAMissing            Reason = "CAMissing"
	ReasonCAInvalid            Reason = "CAInvalid"
	ReasonCAExpired            Reason = "CAExpired"
	ReasonServingMissing       Reason = "ServingMissing"
	ReasonServingInvalid       Reason = "ServingInvalid"
	ReasonServingNotFromCA     Reason = "ServingNotSignedByCA"
	ReasonServingNamesChanged  Reason = "ServingNamesChanged"
	ReasonServingExpired       Reason = "ServingExpired"
	ReasonServingRenewalDue    Reason = "ServingRenewalDue"
	ReasonCARenewalDue         Reason = "CARenewalDue"
	ReasonNextCAInvalid        Reason = "NextCAInvalid"
	ReasonNextCATrusted        Reason = "NextCATrusted"
	ReasonNextCAOverlapEnded   Reason = "NextCAOverlapEnded"
	ReasonPreviousCAOverlapEnd Reason = "PreviousCAOverlapEnded"
	ReasonPreviousCAInvalid    Reason = "PreviousCAInvalid"
	ReasonWaitingForBundle     Reason = "WaitingForBundle"
	ReasonWaitingForOverlap    Reason = "WaitingForOverlap"
	ReasonUpToDate             Reason = "UpToDate"
)

// waitForBundle is how soon to look again while the webhook configurations
// do not trust the next CA yet (their changes also wake the Rotator).
const waitForBundle = 30 * time.Second

// Input is everything Decide needs, already fetched.
type Input struct {
	// SecretExists is false when the Secret is not there at all.
	SecretExists bool
	// State is the parsed Secret.
	State State
	// BundlePublished: every webhook entry's caBundle is TrustBundle(State)
	// (configurations that do not exist are not waited for).
	BundlePublished bool
	// Now is the clock's time.
	Now time.Time
	// Policy is defaulted and valid.
	Policy Policy
	// SANs are the names the serving certificate must carry.
	SANs SANs
}

// Decision is Decide's answer.
type Decision struct {
	Action  Action
	Reason  Reason
	Message string
	// RequeueAfter is when to look again if nothing else happens; set with
	// ActionNone.
	RequeueAfter time.Duration
}

// Decide says what to do with the Secret. It checks, in order: the CA (a
// missing, invalid or expired CA means starting over), the serving
// certificate (unusable, then due for renewal), a CA rotation in progress
// (drop the previous CA, then the three steps of the next one), and a CA
// due for rotation. The first finding wins.
func Decide(in Input) Decision {
	s, now := in.State, in.Now
	if d, ok := checkCA(in); ok {
		return d
	}
	if d, ok := checkServing(in); ok {
		return d
	}
	servingRenew := renewAt(s.Serving.Cert)
	if !now.Before(servingRenew) {
		// Whatever CA rotation step is pending: the current CA may sign.
		return act(ActionIssueServing, ReasonServingRenewalDue,
			fmt.Sprintf("the serving certificate expires at %s", stamp(s.Serving.Cert.NotAfter)))
	}
	wake := []time.Time{servingRenew}

	if s.PreviousCA != nil || s.PreviousCAErr != nil {
		switch end := s.PreviousCARetiredAt.Add(in.Policy.CAOverlap); {
		case s.PreviousCAErr != nil:
			return act(ActionDropPreviousCA, ReasonPreviousCAInvalid, s.PreviousCAErr.Error())
		case s.PreviousCARetiredAt.IsZero() || !now.Before(end) || !now.Before(s.PreviousCA.NotAfter):
			return act(ActionDropPreviousCA, ReasonPreviousCAOverlapEnd,
				fmt.Sprintf("the previous CA stopped signing at %s", stamp(s.PreviousCARetiredAt)))
		default:
			return waitUntil(ReasonWaitingForOverlap, "the previous CA stays trusted until "+stamp(end), now, append(wake, end))
		}
	}

	if s.NextCA != nil || s.NextCAErr != nil {
		switch {
		case s.NextCAErr != nil:
			return act(ActionStartCARotation, ReasonNextCAInvalid, s.NextCAErr.Error())
		case !s.NextCA.Cert.IsCA || !now.Before(s.NextCA.Cert.NotAfter):
			return act(ActionStartCARotation, ReasonNextCAInvalid, "the next CA is not a valid CA at "+stamp(now))
		case s.NextCAPublishedAt.IsZero() && in.BundlePublished:
			return act(ActionMarkNextCAPublished, ReasonNextCATrusted, "every webhook configuration trusts the next CA")
		case s.NextCAPublishedAt.IsZero():
			return waitUntil(ReasonWaitingForBundle, "the webhook configurations do not trust the next CA yet",
				now, append(wake, now.Add(waitForBundle)))
		}
		end := s.NextCAPublishedAt.Add(in.Policy.CAOverlap)
		if now.Before(end) {
			return waitUntil(ReasonWaitingForOverlap, "the next CA signs from "+stamp(end), now, append(wake, end))
		}
		return act(ActionPromoteNextCA, ReasonNextCAOverlapEnded,
			fmt.Sprintf("the next CA has been trusted since %s", stamp(s.NextCAPublishedAt)))
	}

	caRenew := renewAt(s.CA.Cert)
	if !now.Before(caRenew) {
		return act(ActionStartCARotation, ReasonCARenewalDue,
			fmt.Sprintf("the CA expires at %s", stamp(s.CA.Cert.NotAfter)))
	}
	return waitUntil(ReasonUpToDate, "certificates are valid", now, append(wake, caRenew))
}

// checkCA finds a reason to start over.
func checkCA(in Input) (Decision, bool) {
	s := in.State
	switch {
	case !in.SecretExists:
		return act(ActionCreate, ReasonSecretMissing, "the Secret does not exist"), true
	case s.CAErr != nil:
		return act(ActionCreate, ReasonCAInvalid, s.CAErr.Error()), true
	case s.CA == nil:
		return act(ActionCreate, ReasonCAMissing, "the Secret holds no CA"), true
	case !s.CA.Cert.IsCA || (s.CA.Cert.KeyUsage != 0 && s.CA.Cert.KeyUsage&x509.KeyUsageCertSign == 0):
		return act(ActionCreate, ReasonCAInvalid, "ca.crt is not a CA certificate"), true
	case !in.Now.Before(s.CA.Cert.NotAfter):
		return act(ActionCreate, ReasonCAExpired, "the CA expired at "+stamp(s.CA.Cert.NotAfter)), true
	}
	return Decision{}, false
}

// checkServing finds a reason to issue a serving certificate now.
func checkServing(in Input) (Decision, bool) {
	s, now := in.State, in.Now
	c := func(r Reason, msg string) (Decision, bool) { return act(ActionIssueServing, r, msg), true }
	switch {
	case s.ServingErr != nil:
		return c(ReasonServingInvalid, s.ServingErr.Error())
	case s.Serving == nil:
		return c(ReasonServingMissing, "the Secret holds no serving certificate")
	case s.Serving.Cert.CheckSignatureFrom(s.CA.Cert) != nil:
		return c(ReasonServingNotFromCA, "tls.crt is not signed by ca.crt")
	case !in.SANs.covers(s.Serving.Cert.DNSNames, s.Serving.Cert.IPAddresses):
		return c(ReasonServingNamesChanged, fmt.Sprintf("tls.crt is for %v %v, want %v %v",
			s.Serving.Cert.DNSNames, s.Serving.Cert.IPAddresses, in.SANs.DNSNames, in.SANs.IPAddresses))
	case !now.Before(s.Serving.Cert.NotAfter) || now.Before(s.Serving.Cert.NotBefore):
		return c(ReasonServingExpired, fmt.Sprintf("tls.crt is valid from %s to %s",
			stamp(s.Serving.Cert.NotBefore), stamp(s.Serving.Cert.NotAfter)))
	}
	return Decision{}, false
}

func act(a Action, r Reason, msg string) Decision {
	return Decision{Action: a, Reason: r, Message: msg}
}

// waitUntil returns ActionNone until the earliest of the times.
func waitUntil(r Reason, msg string, now time.Time, at []time.Time) Decision {
	next := at[0]
	for _, t := range at[1:] {
		if t.Before(next) {
			next = t
		}
	}
	d := next.Sub(now)
	if d < 0 {
		d = 0
	}
	return Decision{Action: ActionNone, Reason: r, Message: msg, RequeueAfter: d}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}
