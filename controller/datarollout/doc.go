// Package datarollout rolls new data versions out to the pods that use them,
// in waves, and rolls them back when the pods' watchdogs go to error.
//
// A line is one source of one data repository as one namespace uses it:
// (namespace, store.autocrane.io/url, source). Its state (the last known
// good version, the version rolling out and how far each group of pods has
// got, the versions found bad) lives in a ConfigMap in AutoCrane's own
// namespace, so that it survives restarts and leader changes; memory only
// caches it. A group is the pods of one controller owner that feed one data
// deployment NAME from the line's source; each group takes a new version in
// its own waves (rollout.data.autocrane.io/waves and bake-seconds).
//
// The pieces: Decide is the pure decision for one line (table-tested on a
// fake clock); the line reconciler gathers its input (pods from the cache,
// the repository's versions, the state ConfigMap) and acts on the result
// (the state first, then single-key merge patches of
// request.data.autocrane.io/NAME, pins, Events). The status reconciler
// mirrors each pod's datadeployer /status into
// status.data.autocrane.io/NAME over a guarded HTTP client. Repository is
// the consumer's view of the data repository, with an HTTP implementation.
// Controller.InitialRequests gives the mutating webhook the version a new
// pod starts on.
//
// docs/data.md is the manual. The package reads annotations only through
// spec/ and must not import the sidecars' code.
package datarollout
