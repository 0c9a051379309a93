package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemoRuns runs `make demo`'s program to the end, against a real
// control plane, and checks each step's outcome in its output.
func TestDemoRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out, true); err != nil {
		t.Fatalf("demo failed: %v\noutput:\n%s", err, out.String())
	}
	for _, want := range []string{
		"deployment.apps/web created",
		"native sidecar (initContainers, restartPolicy: Always, startup probe /readyz): autocrane-datadeployer",
		"container: app; mounts: autocrane-data at /data (ro)",
		"container: autocrane-watchdoghealthz, readiness probe /healthz",
		`metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://repo": scheme must be http or https`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q\noutput:\n%s", want, out.String())
		}
	}
}
