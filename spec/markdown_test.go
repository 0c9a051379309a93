package spec

import (
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestAnnotationsDocIsGenerated keeps docs/annotations.md in step with
// KnownKeys.
func TestAnnotationsDocIsGenerated(t *testing.T) {
	gendoc.Check(t, "../docs/annotations.md", "<!-- BEGIN GENERATED: spec.KeysMarkdown -->\n", KeysMarkdown())
}
