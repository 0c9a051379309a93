// Package watchdoghealthz is the canary sidecar: it answers the pod's
// readiness probe (GET /healthz) with 200 only once the pod's watchdogs have
// been error-free for a while, so a rollout stops at the first pods whose
// watchdogs fail.
//
// It reads the pod's own annotations (status.autocrane.io/NAME, written by
// the prober, and probe.autocrane.io/NAME) from the downward API file through
// sidecars/podinfo, and makes no Kubernetes API call.
//
// The decision is pure: Observe folds each new set of annotations into a
// History, and Decide turns a History, a Config and the time into a
// Decision. The Sidecar type is the thin HTTP shell around them. The package
// reads annotations only through spec/ and imports no Kubernetes client.
package watchdoghealthz
