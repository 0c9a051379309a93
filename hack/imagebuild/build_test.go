package main

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestSourceDate(t *testing.T) {
	tests := map[string]struct {
		value   string
		want    time.Time
		wantErr bool
	}{
		"unset":      {value: "", want: time.Unix(0, 0)},
		"seconds":    {value: "1700000000", want: time.Unix(1700000000, 0)},
		"negative":   {value: "-5", wantErr: true},
		"not a time": {value: "yesterday", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv(sourceDateEnv, tc.value)
			got, err := sourceDate()
			if (err != nil) != tc.wantErr || (!tc.wantErr && !got.Equal(tc.want)) {
				t.Errorf("got %s, %v; want %s, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestTarballName(t *testing.T) {
	for tag, want := range map[string]string{
		"autocrane:dev":                       "autocrane.tar",
		"autocrane.local/pause:dev":           "pause.tar",
		"registry.example:5000/a/b/tool:v1.0": "tool.tar",
	} {
		got, err := tarballName("out", tag)
		if err != nil || got != filepath.Join("out", want) {
			t.Errorf("tarballName(%q) = %q, %v; want out/%s", tag, got, err, want)
		}
	}
	if _, err := tarballName("out", "Bad Tag"); err == nil {
		t.Error("a bad tag was accepted")
	}
}

func TestRunUsage(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		"help":            {[]string{"--help"}, 0, "kind load image-archive"},
		"stray argument":  {[]string{"now"}, 2, "unexpected arguments"},
		"misspelled flag": {[]string{"--tga=x"}, 2, "flag provided but not defined"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(t.Context(), tc.args, &stderr); code != tc.wantCode {
				t.Errorf("exit code %d, want %d; output %s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantOut) {
				t.Errorf("output lacks %q: %s", tc.wantOut, stderr.String())
			}
		})
	}
}

// TestBuild builds a real image of one program and the pause image, and
// reads both tarballs back.
func TestBuild(t *testing.T) {
	t.Chdir("../..") // the module root, where the tool runs
	out := t.TempDir()
	o := &options{tag: "example.local/autocrane:test", pauseTag: "example.local/pause:test", outputDir: out,
		arch: defaultArch(), packages: "./cmd/autocrane ./hack/imagebuild/pause"}
	if err := build(t.Context(), logr.Discard(), o); err != nil {
		t.Fatal(err)
	}
	for file, tag := range map[string]string{"autocrane.tar": o.tag, "pause.tar": o.pauseTag} {
		ref, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(filepath.Join(out, file), &ref)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "65532:65532" || cfg.OS != "linux" || cfg.Architecture != o.arch {
			t.Errorf("%s: user %q, platform %s/%s", file, cfg.Config.User, cfg.OS, cfg.Architecture)
		}
	}
	o.packages = "./hack/imagebuild/pause"
	if err := build(t.Context(), logr.Discard(), o); err == nil || !strings.Contains(err.Error(), "no program named autocrane") {
		t.Errorf("a build without autocrane: %v", err)
	}
}

// TestCompileIsStatic checks that the programs have no dynamic loader.
func TestCompileIsStatic(t *testing.T) {
	t.Chdir("../..")
	files, err := compile(t.Context(), t.TempDir(), defaultArch(), []mainPackage{{importPath: pausePackage, binary: "pause"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != "/usr/local/bin/pause" || files[0].Mode != 0o755 {
		t.Fatalf("files %+v", files)
	}
	f, err := elf.NewFile(bytes.NewReader(files[0].Content))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a dynamic loader (PT_INTERP): not static")
		}
	}
	if _, err := os.Stat(filepath.Join("hack", "imagebuild", "pause")); err != nil {
		t.Fatal(err)
	}
}

func TestListMainPackages(t *testing.T) {
	t.Chdir("../..")
	pkgs, err := listMainPackages(t.Context(), "./hack/imagebuild/... ./spec")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.binary)
	}
	// spec and oci are libraries; imagebuild and pause are programs.
	if strings.Join(names, ",") != "imagebuild,pause" {
		t.Errorf("programs %v, want imagebuild and pause", names)
	}
}
