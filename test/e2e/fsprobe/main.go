package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// report is what check-data prints.
type report struct {
	Dir        string   `json:"dir"`
	Files      []string `json:"files"`
	Writable   bool     `json:"writable"`
	WriteError string   `json:"writeError,omitempty"`
	ReadError  string   `json:"readError,omitempty"`
}

// createFunc creates a file in a directory, like os.CreateTemp; tests
// replace it to play a read-only mount, which root cannot make with modes.
type createFunc func(dir, pattern string) (*os.File, error)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.CreateTemp))
}

// sampleFiles is what seed writes: the tests' data source.
func sampleFiles() map[string]string {
	return map[string]string{
		"hello.txt":     "hello from the e2e data source\n",
		"sub/data.json": `{"answer":42}` + "\n",
	}
}

func run(args []string, stdout, stderr io.Writer, create createFunc) int {
	if len(args) == 2 && args[0] == "seed" {
		if err := seed(args[1]); err != nil {
			fmt.Fprintln(stderr, "fsprobe:", err)
			return 1
		}
		return 0
	}
	if len(args) != 2 || args[0] != "check-data" {
		fmt.Fprintln(stderr, "usage: fsprobe check-data DIR | fsprobe seed DIR")
		return 2
	}
	r := checkData(args[1], create)
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(stderr, "fsprobe:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	if r.ReadError != "" || len(r.Files) == 0 || r.Writable {
		return 1
	}
	return 0
}

// seed writes sampleFiles under dir.
func seed(dir string) error {
	for name, content := range sampleFiles() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkData lists the regular files under dir (following dir itself when it
// is a symlink, as the datadeployer's NAME link is) and tries to create a
// file in it.
func checkData(dir string, create createFunc) report {
	r := report{Dir: dir, Files: []string{}}
	root := dir + string(filepath.Separator) // resolve the NAME symlink once
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			r.Files = append(r.Files, rel)
		}
		return nil
	})
	if err != nil {
		r.ReadError = err.Error()
	}
	sort.Strings(r.Files)
	f, err := create(dir, ".fsprobe-*")
	if err != nil {
		r.WriteError = err.Error()
		return r
	}
	r.Writable = true
	name := f.Name()
	f.Close()
	os.Remove(name)
	return r
}
