package main

import (
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestDocIsGenerated keeps docs/testworkload.md in step with --help.
func TestDocIsGenerated(t *testing.T) {
	gendoc.Check(t, "../../docs/testworkload.md", "<!-- BEGIN GENERATED: testworkload --help -->\n", "```text\n"+manual()+"```\n")
}
