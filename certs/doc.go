// Package certs keeps the webhook's TLS certificates when AutoCrane manages
// them itself (the manager's --cert-mode=self-managed; see docs/tls.md).
//
// It owns four things:
//   - the layout of the Secret that holds a CA and a serving certificate
//     (Parse, Encode, TrustBundle; secret.go);
//   - the decision of what to do with that Secret at a given time: create,
//     renew the serving certificate, rotate the CA in three steps (Decide,
//     decide.go), a pure function tested with a fake clock, and the issuing
//     of the certificates it asks for (Apply, issue.go);
//   - the Rotator, a leader-only manager runnable that only fetches, asks
//     Decide, writes the Secret and copies the CA bundle into the webhook
//     configurations (rotator.go, webhooks.go);
//   - serving: Serving, a GetCertificate fed from the cached Secret on every
//     replica, and the readiness check and expiry metric shared with the
//     cert-manager mode (serving.go, metrics.go).
//
// certs takes its clock from k8s.io/utils/clock. It must not import the
// webhook or injector packages: it knows nothing about admission.
package certs
