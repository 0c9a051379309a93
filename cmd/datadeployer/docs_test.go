package main

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/autocrane/autocrane/internal/gendoc"
)

// TestDocIsGenerated keeps docs/datadeployer.md in step with the flags.
func TestDocIsGenerated(t *testing.T) {
	var help bytes.Buffer
	fs, _, _ := newFlags(&help)
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			t.Fatalf("unset %s=%s: it changes the documented default of --%s", envName(f.Name), v, f.Name)
		}
	})
	fs.Usage()
	gendoc.Check(t, "../../docs/datadeployer.md", "<!-- BEGIN GENERATED: datadeployer --help -->\n", "```text\n"+help.String()+"```\n")
}
