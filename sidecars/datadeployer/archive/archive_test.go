package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one tar header (and body) a test archive holds.
type entry struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
}

func file(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func dir(name string) entry { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openRoot(t testing.TB, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// tree lists what lies below dir: name -> mode, with file contents.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		v := info.Mode().String()
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExtract(t *testing.T) {
	small := Limits{MaxBytes: 10, MaxEntries: 4, MaxDepth: 3}
	tests := map[string]struct {
		entries []entry
		limits  Limits
		want    map[string]string
		wantErr error
		wantMsg string
		// raw, when set, builds an archive that tar.Writer refuses to write.
		raw func(t *testing.T) []byte
	}{
		"files and directories, missing parents created": {
			entries: []entry{dir("./"), dir("a/"), file("a/x.txt", "x"), file("b/c/y.txt", "yy")},
			want: map[string]string{
				"a": "drwxr-xr-x", "a/x.txt": "-rw-r--r-- x", "b": "drwxr-xr-x", "b/c": "drwxr-xr-x", "b/c/y.txt": "-rw-r--r-- yy",
			},
		},
		"explicit directory after its files": {
			entries: []entry{file("a/x", "1"), dir("a/")},
			want:    map[string]string{"a": "drwxr-xr-x", "a/x": "-rw-r--r-- 1"},
		},
		"setuid, setgid, sticky and world-write masked": {
			entries: []entry{
				{name: "suid", typ: tar.TypeReg, mode: 0o4755, body: "s"},
				{name: "sgid", typ: tar.TypeReg, mode: 0o2666, body: "g"},
				{name: "sticky", typ: tar.TypeDir, mode: 0o1777},
				{name: "private", typ: tar.TypeReg, mode: 0o600, body: "p"},
			},
			want: map[string]string{"suid": "-rwxr-xr-x s", "sgid": "-rw-r--r-- g", "sticky": "drwxr-xr-x", "private": "-rw-r--r-- p"},
		},
		"pax global header skipped": {
			entries: []entry{{name: "pax_global_header", typ: tar.TypeXGlobalHeader}, file("f", "1")},
			want:    map[string]string{"f": "-rw-r--r-- 1"},
		},
		"parent traversal":       {entries: []entry{file("../x", "evil")}, wantErr: ErrUnsafeName, wantMsg: `archive entry "../x": unsafe name: has a ".." component`},
		"inner traversal":        {entries: []entry{file("a/../../x", "evil")}, wantErr: ErrUnsafeName},
		"absolute name":          {entries: []entry{file("/etc/passwd", "evil")}, wantErr: ErrUnsafeName, wantMsg: `archive entry "/etc/passwd": unsafe name: absolute`},
		"unclean name":           {entries: []entry{file("a//b", "x")}, wantErr: ErrUnsafeName},
		"dot component":          {entries: []entry{file("a/./b", "x")}, wantErr: ErrUnsafeName},
		"symlink":                {entries: []entry{{name: "l", typ: tar.TypeSymlink, linkname: "/etc"}}, wantErr: ErrUnsupportedType, wantMsg: `archive entry "l": unsupported entry type: only directories and regular files are allowed (it is a symbolic link)`},
		"hard link":              {entries: []entry{file("f", "x"), {name: "h", typ: tar.TypeLink, linkname: "f"}}, wantErr: ErrUnsupportedType, wantMsg: "(it is a hard link)"},
		"character device":       {entries: []entry{{name: "null", typ: tar.TypeChar}}, wantErr: ErrUnsupportedType, wantMsg: "(it is a character device)"},
		"block device":           {entries: []entry{{name: "sda", typ: tar.TypeBlock}}, wantErr: ErrUnsupportedType, wantMsg: "(it is a block device)"},
		"fifo":                   {entries: []entry{{name: "p", typ: tar.TypeFifo}}, wantErr: ErrUnsupportedType, wantMsg: "(it is a FIFO)"},
		"duplicate file":         {entries: []entry{file("f", "1"), file("f", "2")}, wantErr: ErrDuplicate, wantMsg: `archive entry "f": duplicate entry`},
		"duplicate directory":    {entries: []entry{dir("d/"), dir("d")}, wantErr: ErrDuplicate},
		"duplicate via ./":       {entries: []entry{file("f", "1"), file("./f", "2")}, wantErr: ErrDuplicate},
		"file over a directory":  {entries: []entry{file("d/f", "1"), file("d", "2")}, wantErr: ErrDuplicate},
		"file below a file":      {entries: []entry{file("f", "1"), file("f/g", "2")}, wantErr: ErrParentNotDir},
		"too many bytes":         {entries: []entry{file("a", "123456"), file("b", "12345")}, limits: small, wantErr: ErrTooManyBytes, wantMsg: `archive entry "b": too many bytes: the files add up to more than 10 bytes`},
		"one huge header":        {raw: headerOnly("big", 1<<40), limits: small, wantErr: ErrTooManyBytes},
		"too many entries":       {entries: []entry{file("a", ""), file("b", ""), file("c", ""), file("d", ""), file("e", "")}, limits: small, wantErr: ErrTooManyEntries, wantMsg: `archive entry "e": too many entries: more than 4`},
		"too deep":               {entries: []entry{file("a/b/c/d", "x")}, limits: small, wantErr: ErrTooDeep, wantMsg: `archive entry "a/b/c/d": too deep: 4 components, more than 3`},
		"regular file as root":   {entries: []entry{file(".", "x")}, wantErr: ErrUnsafeName},
		"truncated file body":    {raw: headerOnly("cut", 4096), wantMsg: "unexpected EOF"},
		"name with a NUL inside": {raw: nulName, wantMsg: "invalid tar header"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			limits := tc.limits
			if limits == (Limits{}) {
				limits = DefaultLimits()
			}
			data := makeTar(t, tc.entries...)
			if tc.raw != nil {
				data = tc.raw(t)
			}
			_, err := Extract(t.Context(), openRoot(t, dst), bytes.NewReader(data), limits)
			if tc.wantErr == nil && tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("Extract: %v", err)
				}
				got := tree(t, dst)
				if len(got) != len(tc.want) {
					t.Fatalf("tree = %v, want %v", got, tc.want)
				}
				for k, v := range tc.want {
					if got[k] != v {
						t.Errorf("%s = %q, want %q", k, got[k], v)
					}
				}
				if err := VerifyTree(openRoot(t, dst), limits); err != nil {
					t.Fatalf("VerifyTree: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Extract succeeded; want %v %q", tc.wantErr, tc.wantMsg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.wantMsg)
			}
		})
	}
}

// headerOnly is an archive whose one header promises size bytes that never come.
func headerOnly(name string, size int64) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte("abc"))
		return buf.Bytes()
	}
}

// nulName patches a PAX path record to hold a NUL byte.
func nulName(t *testing.T) []byte {
	data := makeTar(t, file("a\u00e9", "x"))
	patched := bytes.Replace(data, []byte("path=a\u00e9"), []byte("path=a\x00x"), 1)
	if bytes.Equal(patched, data) {
		t.Fatal("no PAX path record to patch")
	}
	return patched
}

func TestCleanName(t *testing.T) {
	tests := map[string]struct {
		in        string
		want      string
		wantDepth int
		wantErr   error
	}{
		"plain":                     {in: "a/b", want: "a/b", wantDepth: 2},
		"dot slash prefix":          {in: "./a/b", want: "a/b", wantDepth: 2},
		"directory slash":           {in: "a/", want: "a", wantDepth: 1},
		"root":                      {in: "./", want: ".", wantDepth: 0},
		"bare dot":                  {in: ".", want: ".", wantDepth: 0},
		"dotfile is fine":           {in: ".hidden/..x", want: ".hidden/..x", wantDepth: 2},
		"empty":                     {in: "", wantErr: ErrUnsafeName},
		"dot dot":                   {in: "..", wantErr: ErrUnsafeName},
		"absolute":                  {in: "/a", wantErr: ErrUnsafeName},
		"double slash":              {in: "a//b", wantErr: ErrUnsafeName},
		"double dot slash prefix":   {in: "././a", wantErr: ErrUnsafeName},
		"dot slash slash (fuzz)":    {in: ".//0", wantErr: ErrUnsafeName},
		"trailing dot dot":          {in: "a/..", wantErr: ErrUnsafeName},
		"nul":                       {in: "a\x00", wantErr: ErrUnsafeName},
		"long component":            {in: strings.Repeat("x", 256), wantErr: ErrUnsafeName},
		"deep":                      {in: strings.Repeat("d/", 64) + "f", wantErr: ErrTooDeep},
		"deepest allowed":           {in: strings.Repeat("d/", 63) + "f", want: strings.Repeat("d/", 63) + "f", wantDepth: 64},
		"backslash is a plain byte": {in: `a\b`, want: `a\b`, wantDepth: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, depth, err := CleanName(tc.in, DefaultMaxDepth)
			if !errors.Is(err, tc.wantErr) || got != tc.want || depth != tc.wantDepth {
				t.Fatalf("CleanName(%q) = %q, %d, %v; want %q, %d, %v", tc.in, got, depth, err, tc.want, tc.wantDepth, tc.wantErr)
			}
		})
	}
}

func TestVerifyTreeRefusesPlantedSymlink(t *testing.T) {
	dst := t.TempDir()
	if err := os.Mkdir(filepath.Join(dst, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(dst, "d", "l")); err != nil {
		t.Fatal(err)
	}
	err := VerifyTree(openRoot(t, dst), DefaultLimits())
	if !errors.Is(err, ErrNotATree) || !strings.Contains(err.Error(), `"d/l" is a symbolic link`) {
		t.Fatalf("VerifyTree = %v, want ErrNotATree naming d/l", err)
	}
}

func TestExtractStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Extract(ctx, openRoot(t, t.TempDir()), bytes.NewReader(makeTar(t, file("f", "x"))), DefaultLimits())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
