// Package eviction evicts pods whose health has stayed error for
// watchdog.autocrane.io/evict-after, through the policy/v1 Eviction API so
// that the PodDisruptionBudget enforces the failing limit. On top of the
// budget it brakes: at most watchdog.autocrane.io/max-in-flight evictions
// per owner until the replacements are Ready, none at all when a large
// share of an owner's pods fail together (a shared cause, not bad pods),
// and a global rate limit.
//
// Decide is the pure decision, table-tested on a fake clock; Reconciler is
// the thin shell that calls the Eviction API and records Events.
package eviction
