package canonical

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"
)

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a/b", "./a", "../a", "/a", "a//b", ".", "./", "a/./b", "a\x00", "\xff", "./.././", strings.Repeat("a/", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p, err := CleanPath(name)
		if err != nil {
			return
		}
		if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || len(p) > MaxPathBytes {
			t.Fatalf("CleanPath(%q) = %q", name, p)
		}
		for part := range strings.SplitSeq(p, "/") {
			if part == "" || part == "." || part == ".." {
				t.Fatalf("CleanPath(%q) = %q has component %q", name, p, part)
			}
		}
		if again, err := CleanPath(p); err != nil || again != p {
			t.Fatalf("CleanPath is not idempotent on %q: %q, %v", p, again, err)
		}
	})
}

// FuzzReadTar feeds arbitrary bytes as an archive. Whatever is accepted
// must come out canonical: packing the canonical tar again changes nothing.
func FuzzReadTar(f *testing.F) {
	seed := func(entries ...tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			h.ModTime = time.Unix(12345, 0)
			tw.WriteHeader(&h)
			tw.Write(bytes.Repeat([]byte("y"), int(h.Size)))
		}
		tw.Close()
		return buf.Bytes()
	}
	f.Add(seed(tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 3, Mode: 0o755}, tar.Header{Name: "c/", Typeflag: tar.TypeDir}))
	f.Add(seed(tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../x"}))
	f.Add(seed(tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(seed(tar.Header{Name: strings.Repeat("long/", 40) + "name", Typeflag: tar.TypeReg, Size: 1}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, archive []byte) {
		first, err := canonicalOf(t, archive)
		if err != nil {
			return
		}
		second, err := canonicalOf(t, first)
		if err != nil {
			t.Fatalf("the canonical tar is refused: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatal("packing the canonical tar again changed it")
		}
	})
}
