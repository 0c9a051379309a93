package framework

import (
	"fmt"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{name: "all of it, without the last newline", max: 100, writes: []string{"a\n", "b\n"}, want: "a\nb"},
		{name: "the end, from a line boundary", max: 8, writes: []string{"first line\n", "two\n", "three\n"}, want: "three"},
		{name: "no line boundary to start at: the last bytes", max: 5, writes: []string{"abcdefgh"}, want: "defgh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &TailBuffer{Max: tt.max}
			for _, w := range tt.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTailBufferDefaultKeeps16KiB(t *testing.T) {
	b := &TailBuffer{}
	for i := range 2000 {
		fmt.Fprintf(b, "line %04d of the process's output\n", i)
	}
	got := b.String()
	if len(got) > defaultTailBytes || len(got) < defaultTailBytes-100 {
		t.Errorf("kept %d bytes, want about %d", len(got), defaultTailBytes)
	}
	if !strings.HasSuffix(got, "line 1999 of the process's output") || !strings.HasPrefix(got, "line ") {
		t.Errorf("kept %q...%q, want whole lines up to the last", got[:20], got[len(got)-20:])
	}
}
