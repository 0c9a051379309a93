package canonical

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// file is test content: a path and its bytes, or a directory.
type file struct {
	path string
	body string
	dir  bool
	exec bool
}

// tarOf builds a plain (non-canonical) tar, in the given order, with
// arbitrary mtimes, owners and modes.
func tarOf(t *testing.T, mtime time.Time, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h.ModTime = mtime
		h.Uid, h.Gid, h.Uname, h.Gname = 1000, 1000, "alice", "staff"
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = strings.Repeat("x", int(h.Size))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func canonicalOf(t *testing.T, archive []byte) ([]byte, error) {
	t.Helper()
	spool, err := os.CreateTemp(t.TempDir(), "spool")
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	tree, err := ReadTar(bytes.NewReader(archive), spool, Limits{MaxBytes: 16 << 20})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tree.Write(&out, SpoolOpener(spool)); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func digestOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestSameContentSameDigest(t *testing.T) {
	reg := func(name string, size int64, mode int64) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: mode}
	}
	dir := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o700} }
	a := tarOf(t, time.Unix(1700000000, 0), dir("./"), dir("./b/"), reg("./b/z", 3, 0o600), reg("./a", 5, 0o744), reg("./b/y", 1, 0o640))
	// Other order, other mtimes and modes, implicit directories.
	b := tarOf(t, time.Unix(1, 0), reg("a", 5, 0o755), reg("b/y", 1, 0o644), reg("b/z", 3, 0o666))
	ca, err := canonicalOf(t, a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := canonicalOf(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(ca) != digestOf(cb) {
		t.Fatalf("digests differ: %s vs %s", digestOf(ca), digestOf(cb))
	}
	// And the canonical form is what the package promises.
	tr := tar.NewReader(bytes.NewReader(ca))
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q gname %q", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		got = append(got, h.Name+" "+strings.TrimPrefix(os.FileMode(h.Mode).String(), "-"))
	}
	want := []string{"a rwxr-xr-x", "b/ rwxr-xr-x", "b/y rw-r--r--", "b/z rw-r--r--"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestDirectoryTreesFromDifferentMtimes(t *testing.T) {
	write := func(root string, mtime time.Time) {
		for _, f := range []file{{path: "x/y/z.txt", body: "zz"}, {path: "run.sh", body: "#!/bin/sh", exec: true}, {path: "empty", dir: true}} {
			p := filepath.Join(root, f.path)
			if f.dir {
				os.MkdirAll(p, 0o700)
				os.Chtimes(p, mtime, mtime)
				continue
			}
			os.MkdirAll(filepath.Dir(p), 0o755)
			mode := os.FileMode(0o600)
			if f.exec {
				mode = 0o700
			}
			if err := os.WriteFile(p, []byte(f.body), mode); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, mtime, mtime)
		}
	}
	digest := func(root string) string {
		tree := NewTree[string](Limits{})
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() {
				return tree.AddDir(rel)
			}
			fi, _ := d.Info()
			return tree.AddFile(rel, fi.Size(), fi.Mode()&0o111 != 0, p)
		})
		h := sha256.New()
		if err := tree.Write(h, func(e *Entry[string]) (io.Reader, error) { return os.Open(e.Ref) }); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h.Sum(nil))
	}
	a, b := t.TempDir(), t.TempDir()
	write(a, time.Unix(100, 0))
	write(b, time.Now())
	if da, db := digest(a), digest(b); da != db {
		t.Fatalf("same content, digests %s and %s", da, db)
	}
	os.WriteFile(filepath.Join(b, "x/y/z.txt"), []byte("zZ"), 0o600)
	if da, db := digest(a), digest(b); da == db {
		t.Fatal("different content, same digest")
	}
}

func TestReadTarRefuses(t *testing.T) {
	tests := map[string]struct {
		entries []tar.Header
		wantErr string
	}{
		"a symbolic link": {
			entries: []tar.Header{{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}},
			wantErr: `archive entry "link" is a symbolic link; a source may contain only directories and regular files`,
		},
		"a hard link": {
			entries: []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "a"}},
			wantErr: `archive entry "h" is a hard link; a source may contain only directories and regular files`,
		},
		"a device": {
			entries: []tar.Header{{Name: "dev/sda", Typeflag: tar.TypeBlock}},
			wantErr: `archive entry "dev/sda" is a block device; a source may contain only directories and regular files`,
		},
		"a FIFO": {
			entries: []tar.Header{{Name: "p", Typeflag: tar.TypeFifo}},
			wantErr: `archive entry "p" is a FIFO; a source may contain only directories and regular files`,
		},
		"an absolute name": {
			entries: []tar.Header{{Name: "/etc/cron.d/x", Typeflag: tar.TypeReg}},
			wantErr: `archive entry: "/etc/cron.d/x": absolute names are not allowed`,
		},
		"a dot-dot name": {
			entries: []tar.Header{{Name: "a/../../x", Typeflag: tar.TypeReg}},
			wantErr: `archive entry: "a/../../x": ".." components are not allowed`,
		},
		"a file twice": {
			entries: []tar.Header{{Name: "a", Typeflag: tar.TypeReg}, {Name: "./a", Typeflag: tar.TypeReg}},
			wantErr: `archive entry: "a" appears twice`,
		},
		"a file under a file": {
			entries: []tar.Header{{Name: "a", Typeflag: tar.TypeReg}, {Name: "a/b", Typeflag: tar.TypeReg}},
			wantErr: `archive entry: "a/b" lies under the file "a"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := canonicalOf(t, tarOf(t, time.Unix(0, 0), tc.entries...))
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("got error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tree := NewTree[int](Limits{MaxBytes: 10, MaxEntries: 3})
	if err := tree.AddFile("a", 6, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := tree.AddFile("b", 5, false, 0); err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Fatalf("got %v, want the byte limit", err)
	}
	if err := tree.AddFile("c/d", 1, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := tree.AddDir("e"); err == nil || err.Error() != "more than 3 entries" {
		t.Fatalf("got %v, want the entry limit", err)
	}
}

func TestWriteDetectsChangedFiles(t *testing.T) {
	tree := NewTree[string](Limits{})
	tree.AddFile("a", 3, false, "")
	for name, body := range map[string]string{"shorter": "ab", "longer": "abcd"} {
		err := tree.Write(io.Discard, func(*Entry[string]) (io.Reader, error) { return strings.NewReader(body), nil })
		if !errors.Is(err, ErrChanged) {
			t.Errorf("%s: got %v, want ErrChanged", name, err)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := map[string]struct {
		in, want, wantErr string
	}{
		"plain":           {in: "a/b", want: "a/b"},
		"leading dot":     {in: "./a/b/", want: "a/b"},
		"double dot-dash": {in: ".//./a", want: "a"},
		"root":            {in: "./", wantErr: ErrRoot.Error()},
		"dot":             {in: ".", wantErr: ErrRoot.Error()},
		"empty":           {in: "", wantErr: "empty name"},
		"absolute":        {in: "/a", wantErr: `"/a": absolute names are not allowed`},
		"inner dot":       {in: "a/./b", wantErr: `"a/./b": "." components are not allowed`},
		"empty component": {in: "a//b", wantErr: `"a//b": empty path component`},
		"NUL":             {in: "a\x00b", wantErr: `"a\x00b": NUL in a name`},
		"invalid UTF-8":   {in: "a\xffb", wantErr: `"a\xffb": names must be valid UTF-8`},
		"long component":  {in: strings.Repeat("a", 256), wantErr: `a component is longer than 255 bytes`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CleanPath(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error ending %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
