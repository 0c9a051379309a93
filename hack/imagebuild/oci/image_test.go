package oci

import (
	"archive/tar"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func testSpec() Spec {
	return Spec{
		Files: []File{
			{Path: "/usr/local/bin/autocrane", Mode: 0o755, Content: []byte("binary one")},
			{Path: "/usr/local/bin/datadeployer", Mode: 0o755, Content: []byte("binary two")},
		},
		Platform:   v1.Platform{OS: "linux", Architecture: "arm64"},
		Entrypoint: []string{"/usr/local/bin/autocrane"},
		Labels:     map[string]string{"org.opencontainers.image.title": "autocrane"},
	}
}

func TestBuildConfig(t *testing.T) {
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "arm64" {
		t.Errorf("platform %s/%s, want linux/arm64", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/autocrane"}) {
		t.Errorf("entrypoint %q", cfg.Config.Entrypoint)
	}
	if !slices.Equal(cfg.Config.Env, []string{"PATH=/usr/local/bin"}) {
		t.Errorf("env %q", cfg.Config.Env)
	}
	if !cfg.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %s, want the Unix epoch", cfg.Created.Time)
	}
	if cfg.Config.Labels["org.opencontainers.image.title"] != "autocrane" {
		t.Errorf("labels %v", cfg.Config.Labels)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d (%v), want 1", len(layers), err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || len(cfg.History) != 1 {
		t.Errorf("rootfs %d diff ids, %d history entries; want 1 and 1", len(cfg.RootFS.DiffIDs), len(cfg.History))
	}
}

// entry is what a test checks of a tar header.
type entry struct {
	typ        byte
	mode       int64
	uid, gid   int
	mtime      time.Time
	content    string
	hasContent bool
}

func layerEntries(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = entry{typ: hdr.Typeflag, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid,
			mtime: hdr.ModTime, content: string(b), hasContent: hdr.Typeflag == tar.TypeReg}
	}
}

func TestLayerContents(t *testing.T) {
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	got := layerEntries(t, img)
	dir := entry{typ: tar.TypeDir, mode: 0o755}
	want := map[string]entry{
		"etc/":                       dir,
		"etc/group":                  {typ: tar.TypeReg, mode: 0o644, content: "root:x:0:\nnonroot:x:65532:\n", hasContent: true},
		"usr/":                       dir,
		"usr/local/":                 dir,
		"usr/local/bin/":             dir,
		"usr/local/bin/autocrane":    {typ: tar.TypeReg, mode: 0o755, content: "binary one", hasContent: true},
		"usr/local/bin/datadeployer": {typ: tar.TypeReg, mode: 0o755, content: "binary two", hasContent: true},
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("layer lacks %s; has %v", name, keys(got))
			continue
		}
		if g.typ != w.typ || g.mode != w.mode || g.uid != 0 || g.gid != 0 {
			t.Errorf("%s: type %c mode %o owner %d:%d, want type %c mode %o owner 0:0", name, g.typ, g.mode, g.uid, g.gid, w.typ, w.mode)
		}
		if !g.mtime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mtime %s, want the Unix epoch", name, g.mtime)
		}
		if w.hasContent && g.content != w.content {
			t.Errorf("%s: content %q, want %q", name, g.content, w.content)
		}
	}
	if p, ok := got["etc/passwd"]; !ok || !strings.Contains(p.content, "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd %q lacks the nonroot user", p.content)
	}
	// Nothing else: no shell, no libc.
	if len(got) != len(want)+1 {
		t.Errorf("layer has %v, want exactly %v and etc/passwd", keys(got), keys(want))
	}
}

func keys(m map[string]entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestReproducible(t *testing.T) {
	a, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("same spec, digests %s and %s", da, db)
	}
	changed := testSpec()
	changed.Files[0].Mode = 0o700
	c, err := Build(changed)
	if err != nil {
		t.Fatal(err)
	}
	if dc, _ := c.Digest(); dc == da {
		t.Errorf("a changed mode kept the digest %s", dc)
	}
}

func TestBuildRejects(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Spec)
		want   string
	}{
		"relative path":          {func(s *Spec) { s.Files[0].Path = "usr/bin/x" }, "must be absolute"},
		"the root":               {func(s *Spec) { s.Files[0].Path = "/" }, "must be absolute"},
		"same file twice":        {func(s *Spec) { s.Files[1].Path = s.Files[0].Path }, "given twice"},
		"a file that is a dir":   {func(s *Spec) { s.Files[1].Path = "/usr/local/bin" }, "also a directory"},
		"no architecture":        {func(s *Spec) { s.Platform.Architecture = "" }, "needs an OS and an architecture"},
		"passwd given by caller": {func(s *Spec) { s.Files[0].Path = "/etc/passwd" }, "given twice"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := testSpec()
			tc.mutate(&s)
			_, err := Build(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteTarballLoads(t *testing.T) {
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "out", "autocrane.tar")
	if err := WriteTarball(file, "autocrane:dev", img); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("autocrane:dev")
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("reading the tarball back: %v", err)
	}
	want, _ := img.Digest()
	got, err := loaded.Digest()
	if err != nil || got != want {
		t.Errorf("loaded digest %s (%v), want %s", got, err, want)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"autocrane:dev"}) {
		t.Errorf("manifest %+v, want one image tagged autocrane:dev", m)
	}
	if err := WriteTarball(file, "Not A Tag!", img); err == nil {
		t.Error("a bad tag was accepted")
	}
}

func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	img, err := Build(testSpec())
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/autocrane:dev"
	if err := Push(t.Context(), ref, img, true); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(r, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pulled digest %s, want %s", got, want)
	}
}
