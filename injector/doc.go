// Package injector turns a pod and what it asks of AutoCrane (a spec.Pod)
// into the mutated pod: the shared data volume, the datadeployer, the
// watchdoghealthz canary sidecar and the downward API volume they read.
//
// Inject is a pure function: no client, no I/O, no clock. It never removes
// or changes a field it did not add. What it adds is recorded in the
// autocrane.io/injected annotation, so the next pass replaces exactly that:
// a second pass changes nothing, and a changed Config updates the pod in
// place.
//
// injector must not import controller-runtime or client-go.
package injector
