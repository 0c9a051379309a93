package main

import (
	"bytes"
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestHelpIsDocumented keeps the --help section of docs/cluster.md in step
// with the flags; UPDATE_GOLDEN=1 rewrites it.
func TestHelpIsDocumented(t *testing.T) {
	for _, name := range []string{"AUTOCRANE_CLUSTER_DIR", "AUTOCRANE_CACHE", "AUTOCRANE_CLUSTER_IMAGES",
		"AUTOCRANE_CLUSTER_POD_CIDR", "AUTOCRANE_CLUSTER_SERVICE_CIDR", "AUTOCRANE_CLUSTER_BRIDGE",
		"AUTOCRANE_COREDNS_VERSION", "AUTOCRANE_CLUSTER_KEEP_ON_FAILURE"} {
		t.Setenv(name, "") // the documented defaults, not this shell's
	}
	var help bytes.Buffer
	fs, _ := newFlags("cluster", &help)
	fs.Usage()
	gendoc.Check(t, "../../docs/cluster.md", "<!-- BEGIN GENERATED: cluster --help -->\n", "```text\n"+help.String()+"```\n")
}
