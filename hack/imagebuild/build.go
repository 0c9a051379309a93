package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/autocrane/autocrane/hack/imagebuild/oci"
)

const (
	binDir        = "/usr/local/bin"
	entrypoint    = "autocrane"
	pausePackage  = "./hack/imagebuild/pause"
	sourceDateEnv = "SOURCE_DATE_EPOCH"
)

func defaultArch() string { return runtime.GOARCH }

// mainPackage is one program found by go list.
type mainPackage struct {
	importPath string
	binary     string
}

func build(ctx context.Context, log logr.Logger, o *options) error {
	created, err := sourceDate()
	if err != nil {
		return err
	}
	platform := v1.Platform{OS: "linux", Architecture: o.arch}
	work, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return fmt.Errorf("creating a build directory: %w", err)
	}
	defer os.RemoveAll(work)

	pkgs, err := listMainPackages(ctx, o.packages)
	if err != nil {
		return err
	}
	if !hasBinary(pkgs, entrypoint) {
		return fmt.Errorf("%s lists no program named %s, the image's entrypoint", o.packages, entrypoint)
	}
	log.Info("compiling", "programs", binaryNames(pkgs), "arch", o.arch)
	files, err := compile(ctx, filepath.Join(work, "programs"), o.arch, pkgs)
	if err != nil {
		return err
	}
	img, err := oci.Build(oci.Spec{
		Files:      files,
		Platform:   platform,
		Entrypoint: []string{path.Join(binDir, entrypoint)},
		Labels:     map[string]string{"org.opencontainers.image.title": "autocrane"},
		Created:    created,
	})
	if err != nil {
		return err
	}
	if err := writeImage(log, o.outputDir, o.tag, img); err != nil {
		return err
	}

	if o.pauseTag != "" {
		pause, err := pauseImage(ctx, work, platform, created)
		if err != nil {
			return err
		}
		if err := writeImage(log, o.outputDir, o.pauseTag, pause); err != nil {
			return err
		}
	}

	if o.push != "" {
		log.Info("pushing", "reference", o.push)
		if err := oci.Push(ctx, o.push, img, o.pushInsecure); err != nil {
			return err
		}
	}
	return nil
}

// pauseImage builds the pause program into the sandbox image.
func pauseImage(ctx context.Context, work string, platform v1.Platform, created time.Time) (v1.Image, error) {
	files, err := compile(ctx, filepath.Join(work, "pause"), platform.Architecture,
		[]mainPackage{{importPath: pausePackage, binary: "pause"}})
	if err != nil {
		return nil, err
	}
	return oci.PauseImage(files[0].Content, platform, created)
}

func writeImage(log logr.Logger, dir, tag string, img v1.Image) error {
	file, err := tarballName(dir, tag)
	if err != nil {
		return err
	}
	if err := oci.WriteTarball(file, tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing the digest of %s: %w", tag, err)
	}
	log.Info("wrote image", "file", file, "tag", tag, "digest", digest.String())
	return nil
}

func tarballName(dir, tag string) (string, error) {
	ref, err := name.NewTag(tag)
	if err != nil {
		return "", fmt.Errorf("image tag %q: %w", tag, err)
	}
	return filepath.Join(dir, path.Base(ref.RepositoryStr())+".tar"), nil
}

// sourceDate is the reproducible-builds timestamp: $SOURCE_DATE_EPOCH
// seconds, else the Unix epoch.
func sourceDate() (time.Time, error) {
	v, ok := os.LookupEnv(sourceDateEnv)
	if !ok || v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("$%s=%q: want whole seconds since the Unix epoch", sourceDateEnv, v)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// listMainPackages returns the programs that the space-separated go list
// patterns match, sorted by binary name; two programs with the same name are
// an error.
func listMainPackages(ctx context.Context, patterns string) ([]mainPackage, error) {
	args := append([]string{"list", "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}"}, strings.Fields(patterns)...)
	out, err := goCommand(ctx, nil, args...)
	if err != nil {
		return nil, err
	}
	var pkgs []mainPackage
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		bin := path.Base(line)
		if other, dup := seen[bin]; dup {
			return nil, fmt.Errorf("programs %s and %s would both be %s/%s", other, line, binDir, bin)
		}
		seen[bin] = line
		pkgs = append(pkgs, mainPackage{importPath: line, binary: bin})
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].binary < pkgs[j].binary })
	return pkgs, nil
}

// compile builds the programs static for linux/arch into dir, in one go
// build (it links them in parallel), and returns them as image files under
// binDir.
func compile(ctx context.Context, dir, arch string, pkgs []mainPackage) ([]oci.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch}
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}
	for _, p := range pkgs {
		args = append(args, p.importPath)
	}
	if _, err := goCommand(ctx, env, args...); err != nil {
		return nil, err
	}
	var files []oci.File
	for _, p := range pkgs {
		content, err := os.ReadFile(filepath.Join(dir, p.binary))
		if err != nil {
			return nil, fmt.Errorf("reading the built %s: %w", p.binary, err)
		}
		files = append(files, oci.File{Path: path.Join(binDir, p.binary), Mode: 0o755, Content: content})
	}
	return files, nil
}

// goCommand runs the go tool and returns its stdout; on failure the error
// carries its stderr.
func goCommand(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && msg != "" {
			return "", fmt.Errorf("go %s: %s: %w", strings.Join(args, " "), msg, err)
		}
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

func hasBinary(pkgs []mainPackage, name string) bool {
	for _, p := range pkgs {
		if p.binary == name {
			return true
		}
	}
	return false
}

func binaryNames(pkgs []mainPackage) string {
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = p.binary
	}
	return strings.Join(names, ",")
}
