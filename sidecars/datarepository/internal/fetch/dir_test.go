package fetch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

func TestDirChangeDetection(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "sub", "a"), []byte("a"), 0o644)
	d := &Dir{Path: root}
	res := mustFetch(t, d, store.Origin{})
	if got := keys(contents(t, res)); !slices.Equal(got, []string{"sub/", "sub/a"}) {
		t.Fatalf("entries %v", got)
	}
	if !strings.HasPrefix(res.Revision, "sha256:") {
		t.Fatalf("revision %q", res.Revision)
	}
	// A new mtime alone changes nothing.
	future := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(root, "sub", "a"), future, future)
	if again := mustFetch(t, d, res.Origin); !again.Unchanged {
		t.Fatal("a touched file made a change")
	}
	os.WriteFile(filepath.Join(root, "sub", "a"), []byte("b"), 0o644)
	if third := mustFetch(t, d, res.Origin); third.Unchanged || contents(t, third)["sub/a"] != "b" {
		t.Fatal("a changed file was not seen")
	}
}

func TestDirRefusals(t *testing.T) {
	tests := map[string]struct {
		setup func(root string)
		want  string
	}{
		"a symbolic link": {
			setup: func(root string) { os.Symlink("/etc/passwd", filepath.Join(root, "pw")) },
			want:  `"pw" is a symbolic link; a source may contain only directories and regular files`,
		},
		"a FIFO": {
			setup: func(root string) { syscall.Mkfifo(filepath.Join(root, "p"), 0o644) },
			want:  `"p" is a p---------; a source may contain only directories and regular files`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(root)
			_, err := (&Dir{Path: root}).Fetch(t.Context(), store.Origin{})
			want := "dir " + root + ": " + tc.want
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %q", err, want)
			}
		})
	}
	if _, err := (&Dir{Path: "/nonexistent/x"}).Fetch(t.Context(), store.Origin{}); err == nil {
		t.Fatal("a missing directory is no error")
	}
}
