package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const (
	beginFlags = "<!-- BEGIN GENERATED: autocrane manager --help -->\n"
	endFlags   = "<!-- END GENERATED -->"
)

// TestManagerDocIsGenerated keeps docs/manager.md in step with the flags.
// UPDATE_GOLDEN=1 rewrites the generated part.
func TestManagerDocIsGenerated(t *testing.T) {
	for _, k := range os.Environ() {
		if strings.HasPrefix(k, "AUTOCRANE_") {
			t.Fatalf("unset %s: the environment changes the documented defaults", k)
		}
	}
	var help bytes.Buffer
	fs, _, _ := newManagerFlags(&help)
	fs.Usage()
	const file = "../../docs/manager.md"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, beginFlags)
	end := strings.Index(doc, endFlags)
	if start < 0 || end < start {
		t.Fatalf("%s lacks the generated markers", file)
	}
	want := doc[:start+len(beginFlags)] + "```text\n" + help.String() + "```\n" + doc[end:]
	if want == doc {
		return
	}
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the manager's flags; run make update-golden", file)
}
