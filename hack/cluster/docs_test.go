package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
	checkGeneratedSection(t, "../../docs/cluster.md", "cluster --help", "```text\n"+help.String()+"```\n")
}

// checkGeneratedSection compares the part of file between the line
// "<!-- BEGIN GENERATED: name -->" and the next "<!-- END GENERATED -->"
// with content. (internal/gendoc handles one section per file; this page
// has two.)
func checkGeneratedSection(t *testing.T, file, name, content string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	begin := "<!-- BEGIN GENERATED: " + name + " -->\n"
	start := strings.Index(doc, begin)
	if start < 0 {
		t.Fatalf("%s lacks %q", file, strings.TrimSpace(begin))
	}
	start += len(begin)
	end := strings.Index(doc[start:], "<!-- END GENERATED -->")
	if end < 0 {
		t.Fatalf("%s: no end marker after %q", file, strings.TrimSpace(begin))
	}
	want := doc[:start] + content + doc[start+end:]
	if want == doc {
		return
	}
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s section %q is out of date with the code; run UPDATE_GOLDEN=1 go test ./hack/...", file, name)
}
