// Package testworkload is a small HTTP service with a watchdog endpoint
// whose answer can be switched at run time (healthy, warning, failing), so
// that tests, the demo and users' trials can watch AutoCrane's prober, the
// canary sidecar and repairs react to a failing app.
//
// It serves GET /ping, GET /watchdog, POST /fail, POST /warn, POST /recover
// and GET /metrics (see docs/testworkload.md). Two test-only modes make
// /watchdog misbehave on purpose: a redirect and an oversized body, which the
// prober must neither follow nor read in full.
//
// The package imports no Kubernetes client and keeps no global state; time
// comes from an injected clock so that "fail for 30s" is tested with a fake
// clock.
package testworkload
