package spec

// Annotations on the self-managed webhook TLS Secret (the manager's
// --cert-mode=self-managed; docs/tls.md). Only the manager's leader writes
// them; they record when each step of a CA rotation happened, so a new
// leader resumes a rotation where the old one left it. They live on the
// Secret, never on pods, so the webhooks and the state-ownership policy do
// not see them.
const (
	// AnnotationCANextPublishedAt is when every webhook configuration was
	// seen trusting the CA in ca-next.crt (RFC 3339, UTC). The new CA
	// starts signing one CA overlap later.
	AnnotationCANextPublishedAt = "certs.autocrane.io/ca-next-published-at"
	// AnnotationCAPreviousRetiredAt is when the CA in ca-previous.crt
	// stopped signing (RFC 3339, UTC). It leaves the CA bundle one CA
	// overlap later.
	AnnotationCAPreviousRetiredAt = "certs.autocrane.io/ca-previous-retired-at"
)
