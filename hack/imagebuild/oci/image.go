package oci

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// NonRootID is the UID and GID the images run as, the one distroless calls
// "nonroot"; AutoCrane's injector runs its containers with the same IDs.
const NonRootID = 65532

// File is one regular file of the image. Files are owned by root:root, so
// the non-root user can run them but not change them.
type File struct {
	// Path is absolute inside the image, e.g. /usr/local/bin/autocrane.
	Path string
	// Mode holds the permission bits, e.g. 0o755.
	Mode int64
	// Content is the file's bytes.
	Content []byte
}

// Spec describes an image. The zero Created is the Unix epoch, which keeps
// images reproducible: the same files give the same digest.
type Spec struct {
	// Files go into the image's one layer, with their parent directories
	// (mode 0755, root-owned).
	Files []File
	// Platform is the OS and architecture written into the config.
	// Required.
	Platform v1.Platform
	// Entrypoint and Cmd are the config's entrypoint and default arguments.
	Entrypoint []string
	Cmd        []string
	// Env is added to the config, as KEY=value.
	Env []string
	// Labels are the config's labels.
	Labels map[string]string
	// Created is the timestamp of the config, the layer's files and the
	// history. Zero means the Unix epoch.
	Created time.Time
}

// Build returns the image the spec describes: one layer, run as
// NonRootID:NonRootID, working directory /.
func Build(spec Spec) (v1.Image, error) {
	if spec.Platform.OS == "" || spec.Platform.Architecture == "" {
		return nil, errors.New("image platform needs an OS and an architecture")
	}
	created := spec.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	files := append(spec.Files, accountFiles()...)
	layerTar, err := layerTarball(files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("making the image layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "autocrane hack/imagebuild",
			Comment:   "static binaries, no shell",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = spec.Platform.OS
	cfg.Architecture = spec.Platform.Architecture
	cfg.Variant = spec.Platform.Variant
	cfg.Created = v1.Time{Time: created}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", NonRootID, NonRootID),
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        append([]string{"PATH=/usr/local/bin"}, spec.Env...),
		Labels:     spec.Labels,
		WorkingDir: "/",
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("writing the config: %w", err)
	}
	return img, nil
}

// accountFiles names the non-root user and group, for programs that look
// them up; there is no root login and no shell.
func accountFiles() []File {
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Content: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootID, NonRootID))},
		{Path: "/etc/group", Mode: 0o644, Content: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootID))},
	}
}

// layerTarball writes the files and their parent directories into an
// uncompressed tar, sorted by path, with fixed times and root ownership.
func layerTarball(files []File, mtime time.Time) ([]byte, error) {
	dirs := map[string]bool{}
	byPath := map[string]File{}
	for _, f := range files {
		clean := path.Clean(f.Path)
		if !path.IsAbs(f.Path) || clean == "/" {
			return nil, fmt.Errorf("image file %q: the path must be absolute and name a file", f.Path)
		}
		if _, dup := byPath[clean]; dup {
			return nil, fmt.Errorf("image file %q given twice", clean)
		}
		byPath[clean] = f
		for d := path.Dir(clean); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for p := range byPath {
		if dirs[p] {
			return nil, fmt.Errorf("image file %q is also a directory of another file", p)
		}
	}
	names := make([]string, 0, len(dirs)+len(byPath))
	for d := range dirs {
		names = append(names, d)
	}
	for p := range byPath {
		names = append(names, p)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(name, "/"),
			ModTime: mtime,
			Uname:   "root",
			Gname:   "root",
		}
		f, isFile := byPath[name]
		if isFile {
			hdr.Typeflag = tar.TypeReg
			hdr.Mode = f.Mode
			hdr.Size = int64(len(f.Content))
		} else {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("writing the layer entry %s: %w", name, err)
		}
		if isFile {
			if _, err := tw.Write(f.Content); err != nil {
				return nil, fmt.Errorf("writing the layer entry %s: %w", name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing the layer: %w", err)
	}
	return buf.Bytes(), nil
}

// PauseImage is the pod sandbox image: the pause program at /pause, its
// entrypoint, as in the upstream pause image. hack/imagebuild and
// hack/cluster both build it here, so both give the same digest.
func PauseImage(binary []byte, platform v1.Platform, created time.Time) (v1.Image, error) {
	return Build(Spec{
		Files:      []File{{Path: "/pause", Mode: 0o755, Content: binary}},
		Platform:   platform,
		Entrypoint: []string{"/pause"},
		Labels:     map[string]string{"org.opencontainers.image.title": "autocrane-pause"},
		Created:    created,
	})
}
