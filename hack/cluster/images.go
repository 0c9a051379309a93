package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/autocrane/autocrane/hack/imagebuild/oci"
)

// clusterImages builds the two images the cluster itself needs, the pause
// (sandbox) image into WORKDIR/images and CoreDNS's next to its cached
// binary (compressing 80 MB takes a while), and returns their tarballs.
// Neither can be pulled: these machines reach no registry.
func clusterImages(ctx context.Context, c config, corednsBin string) ([]string, error) {
	dir := c.path("images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", dir+string(filepath.Separator), "./hack/imagebuild/pause")
	build.Dir = c.RepoDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the pause program: %w: %s", err, strings.TrimSpace(string(out)))
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	pauseBin, err := os.ReadFile(filepath.Join(dir, "pause"))
	if err != nil {
		return nil, fmt.Errorf("reading the pause program: %w", err)
	}
	pause, err := oci.PauseImage(pauseBin, platform, time.Unix(0, 0))
	if err != nil {
		return nil, err
	}
	pauseTar := filepath.Join(dir, "pause.tar")
	if err := oci.WriteTarball(pauseTar, pauseImage, pause); err != nil {
		return nil, err
	}
	corednsTar := corednsBin + "-image.tar"
	if _, err := os.Stat(corednsTar); err != nil { // else built from the same cached binary before
		content, err := os.ReadFile(corednsBin)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", corednsBin, err)
		}
		img, err := oci.Build(oci.Spec{
			Files:      []oci.File{{Path: "/usr/local/bin/coredns", Mode: 0o755, Content: content}},
			Platform:   platform,
			Entrypoint: []string{"/usr/local/bin/coredns"},
			Labels:     map[string]string{"org.opencontainers.image.title": "coredns"},
		})
		if err != nil {
			return nil, err
		}
		if err := oci.WriteTarball(corednsTar, corednsImage, img); err != nil {
			return nil, err
		}
	}
	return []string{pauseTar, corednsTar}, nil
}

// projectImages lists the tarballs `make images` wrote (autocrane.tar,
// pause.tar, ...), sorted.
func projectImages(c config) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(c.ImagesDir, "*.tar"))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", c.ImagesDir, err)
	}
	sort.Strings(files)
	return files, nil
}
