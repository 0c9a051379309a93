package main

import (
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestDocIsGenerated keeps docs/watchdoghealthz.md in step with --help.
func TestDocIsGenerated(t *testing.T) {
	gendoc.Check(t, "../../docs/watchdoghealthz.md", "<!-- BEGIN GENERATED: watchdoghealthz --help -->\n", "```text\n"+manual()+"```\n")
}
