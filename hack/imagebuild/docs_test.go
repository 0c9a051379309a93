package main

import (
	"bytes"
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestHelpIsDocumented keeps the --help section of docs/cluster.md in step
// with the flags; UPDATE_GOLDEN=1 rewrites it.
func TestHelpIsDocumented(t *testing.T) {
	var help bytes.Buffer
	fs, _ := newFlags(&help)
	fs.Lookup("arch").DefValue = "amd64" // the machine's GOARCH; documented as on amd64
	fs.Usage()
	gendoc.Check(t, "../../docs/cluster.md", "<!-- BEGIN GENERATED: imagebuild --help -->\n", "```text\n"+help.String()+"```\n")
}
