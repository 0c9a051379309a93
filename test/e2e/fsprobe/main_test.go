package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCheckData(t *testing.T) {
	readOnly := func(dir, _ string) (*os.File, error) {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: syscall.EROFS}
	}
	tests := map[string]struct {
		setup     func(t *testing.T, dir string)
		create    createFunc
		wantCode  int
		wantFiles []string
		writable  bool
	}{
		"files in a read-only directory pass": {
			setup: func(t *testing.T, dir string) {
				write(t, filepath.Join(dir, "a", "b.txt"))
				write(t, filepath.Join(dir, "c.txt"))
			},
			create:    readOnly,
			wantCode:  0,
			wantFiles: []string{"a/b.txt", "c.txt"},
		},
		"a writable directory fails": {
			setup:     func(t *testing.T, dir string) { write(t, filepath.Join(dir, "c.txt")) },
			create:    os.CreateTemp,
			wantCode:  1,
			wantFiles: []string{"c.txt"},
			writable:  true,
		},
		"an empty read-only directory fails": {
			setup:     func(t *testing.T, dir string) {},
			create:    readOnly,
			wantCode:  1,
			wantFiles: []string{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			var stdout, stderr bytes.Buffer
			code := run([]string{"check-data", dir}, &stdout, &stderr, tc.create)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; stdout %s stderr %s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			var r report
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("output %q: %v", stdout.String(), err)
			}
			if r.Writable != tc.writable {
				t.Errorf("writable %v, want %v (%+v)", r.Writable, tc.writable, r)
			}
			if len(r.Files) != len(tc.wantFiles) {
				t.Fatalf("files %q, want %q", r.Files, tc.wantFiles)
			}
			for i := range r.Files {
				if r.Files[i] != tc.wantFiles[i] {
					t.Errorf("files %q, want %q", r.Files, tc.wantFiles)
				}
			}
		})
	}
}

func TestSeedThenCheckThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"seed", src}, &stdout, &stderr, os.CreateTemp); code != 0 {
		t.Fatalf("seed: exit %d: %s", code, stderr.String())
	}
	// The datadeployer publishes LOCATION/NAME as a symlink.
	link := filepath.Join(dir, "name")
	if err := os.Symlink("src", link); err != nil {
		t.Fatal(err)
	}
	readOnly := func(dir, _ string) (*os.File, error) {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: syscall.EROFS}
	}
	if code := run([]string{"check-data", link}, &stdout, &stderr, readOnly); code != 0 {
		t.Fatalf("check-data: exit %d: %s %s", code, stdout.String(), stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Files) != 2 || r.Files[0] != "hello.txt" || r.Files[1] != "sub/data.json" {
		t.Errorf("files %q, want hello.txt and sub/data.json", r.Files)
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"list"}, &stdout, &stderr, os.CreateTemp); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
}

func write(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}
