package archive

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"a/b", "./a/", "../x", "/abs", "a//b", "a/./b", ".", "./", "a\x00b", "..a/b..", strings.Repeat("d/", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, depth, err := CleanName(name, 8)
		if err != nil {
			return
		}
		if got == "." {
			if depth != 0 {
				t.Fatalf("root with depth %d", depth)
			}
			return
		}
		if !filepath.IsLocal(got) || path.Clean(got) != got || strings.ContainsRune(got, 0) {
			t.Fatalf("CleanName(%q) = %q: not a clean local name", name, got)
		}
		if depth < 1 || depth > 8 || depth != strings.Count(got, "/")+1 {
			t.Fatalf("CleanName(%q) depth %d for %q", name, depth, got)
		}
		for _, p := range strings.Split(got, "/") {
			if p == ".." || p == "." || p == "" {
				t.Fatalf("CleanName(%q) = %q has component %q", name, got, p)
			}
		}
	})
}

// FuzzExtract feeds arbitrary bytes (seeded with good and hostile archives)
// to Extract. Whatever it accepts must be a tree of directories and
// regular files with masked modes, inside the root, within the limits.
func FuzzExtract(f *testing.F) {
	f.Add(makeTar(f, dir("a/"), file("a/b", "x"), file("c", "yy")))
	f.Add(makeTar(f, file("../x", "evil")))
	f.Add(makeTar(f, entry{name: "l", typ: tar.TypeSymlink, linkname: "../../etc"}, file("l/passwd", "x")))
	f.Add(makeTar(f, entry{name: "s", typ: tar.TypeReg, mode: 0o7777, body: "x"}))
	f.Add(makeTar(f, file("f", "1"), file("f", "2")))
	f.Add(makeTar(f, file("a/b/c/d/e", "deep")))
	f.Add([]byte{})
	lim := Limits{MaxBytes: 64, MaxEntries: 8, MaxDepth: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dst := filepath.Join(base, "root")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dst)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		stats, err := Extract(t.Context(), root, bytes.NewReader(data), lim)
		if outside, _ := os.ReadDir(base); len(outside) != 1 {
			t.Fatalf("extraction created %d entries beside the root", len(outside)-1)
		}
		if err != nil {
			return
		}
		if err := VerifyTree(root, lim); err != nil {
			t.Fatalf("accepted archive fails VerifyTree: %v", err)
		}
		if stats.Bytes > lim.MaxBytes || stats.Files+stats.Dirs > lim.MaxEntries*lim.MaxDepth {
			t.Fatalf("stats %+v beyond limits %+v", stats, lim)
		}
		err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dst {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			m := info.Mode()
			ok := (m.IsDir() && m.Perm() == DirMode && m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) == 0) ||
				(m.IsRegular() && (m == FileMode || m == ExecMode))
			if !ok {
				t.Fatalf("%s has mode %v", p, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
