package main

import (
	"bytes"
	"flag"
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
	var help bytes.Buffer
	fs, _, _ := newManagerFlags(&help)
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			t.Fatalf("unset %s=%s: it changes the documented default of --%s", envName(f.Name), v, f.Name)
		}
	})
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
