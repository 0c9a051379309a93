// Package gendoc keeps generated sections of the docs in step with the code:
// a test renders the section and Check compares it with the file, or
// rewrites the file when UPDATE_GOLDEN=1 (make update-golden).
package gendoc

import (
	"os"
	"strings"
	"testing"
)

// EndMarker closes every generated section.
const EndMarker = "<!-- END GENERATED -->"

// Check fails t when the section of file between begin (a whole line,
// newline included) and the next EndMarker differs from content. A file may
// hold several sections, each with its own begin line.
func Check(t testing.TB, file, begin, content string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, begin)
	end := -1
	if start >= 0 {
		end = strings.Index(doc[start:], EndMarker)
	}
	if start < 0 || end < 0 {
		t.Fatalf("%s lacks the markers %q and %q", file, strings.TrimSpace(begin), EndMarker)
	}
	end += start
	want := doc[:start+len(begin)] + content + doc[end:]
	if want == doc {
		return
	}
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the code; run make update-golden", file)
}
