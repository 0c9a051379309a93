package spec

import (
	"os"
	"strings"
	"testing"
)

const (
	beginGenerated = "<!-- BEGIN GENERATED: spec.KeysMarkdown -->\n"
	endGenerated   = "<!-- END GENERATED -->"
)

// TestAnnotationsDocIsGenerated keeps docs/annotations.md in step with
// KnownKeys. UPDATE_GOLDEN=1 rewrites the generated part.
func TestAnnotationsDocIsGenerated(t *testing.T) {
	const file = "../docs/annotations.md"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, beginGenerated)
	end := strings.Index(doc, endGenerated)
	if start < 0 || end < start {
		t.Fatalf("%s lacks the generated markers", file)
	}
	want := doc[:start+len(beginGenerated)] + KeysMarkdown() + doc[end:]
	if want == doc {
		return
	}
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with spec.KnownKeys; run make update-golden", file)
}
