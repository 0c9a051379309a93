package spec

import (
	"fmt"
	"strings"
)

// KeysMarkdown renders KnownKeys as the Markdown tables of
// docs/annotations.md, so the docs cannot drift from the code.
func KeysMarkdown() string {
	var b strings.Builder
	table := func(title string, keep func(KeyInfo) bool) {
		fmt.Fprintf(&b, "### %s\n\n| key | on | value | namespace default | meaning |\n|---|---|---|---|---|\n", title)
		for _, k := range KnownKeys {
			if !keep(k) {
				continue
			}
			key := "`" + k.Key + "`"
			if k.Prefix {
				key = "`" + k.Key + "NAME`"
			}
			on := "annotation"
			if k.Label {
				on = "label"
			}
			def := "no"
			if k.NamespaceDefault {
				def = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", key, on, escapeCell(k.Form), def, escapeCell(k.Doc))
		}
		b.WriteString("\n")
	}
	table("Keys you set", func(k KeyInfo) bool { return !k.State })
	table("Keys AutoCrane writes (state)", func(k KeyInfo) bool { return k.State })
	return b.String()
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
