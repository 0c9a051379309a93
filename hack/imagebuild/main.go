package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

const usage = `Usage: go run ./hack/imagebuild [flags]

Builds AutoCrane's container image without a container engine, from the
repository it runs in (the current directory must be the module root):

  1. every main package that "go list ./cmd/..." finds is compiled static
     (CGO_ENABLED=0, -trimpath, -ldflags "-s -w") for linux/--arch;
  2. the binaries go into /usr/local/bin of ONE image: one layer, files owned
     by root and mode 0755, /etc/passwd and /etc/group naming the user
     nonroot, no shell, user 65532:65532, entrypoint /usr/local/bin/autocrane,
     every timestamp set to $SOURCE_DATE_EPOCH (default 0, the Unix epoch),
     so the same sources give the same image digest;
  3. the image is written as a docker/OCI tarball tagged --tag, named after
     the tag's last path element: --output-dir/autocrane.tar for the default;
  4. the pause image (hack/imagebuild/pause, a static program that waits for
     SIGTERM), tagged --pause-tag, is written likewise (pause.tar);
  5. with --push, the AutoCrane image is also pushed to a registry.

Using the tarball:
  hack/cluster-up                           imports --output-dir/*.tar itself
  ctr -n k8s.io images import autocrane.tar  any containerd node
  kind load image-archive autocrane.tar      a kind cluster
  docker load -i autocrane.tar               a docker engine
Pods must then use imagePullPolicy: Never or IfNotPresent.

Flags:
`

type options struct {
	tag          string
	pauseTag     string
	outputDir    string
	arch         string
	packages     string
	push         string
	pushInsecure bool
}

func newFlags(stderr io.Writer) (*flag.FlagSet, *options) {
	o := &options{}
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.tag, "tag", "autocrane:dev", "tag of the AutoCrane image in its tarball (and in containerd after import)")
	fs.StringVar(&o.pauseTag, "pause-tag", "autocrane.local/pause:dev", "tag of the pause image; empty: do not build it")
	fs.StringVar(&o.outputDir, "output-dir", "_output/images", "directory of the tarballs, created if missing; files are replaced atomically")
	fs.StringVar(&o.arch, "arch", defaultArch(), "GOARCH of the binaries and the image's architecture (the OS is always linux)")
	fs.StringVar(&o.packages, "packages", "./cmd/...", "space-separated go list patterns of the programs to put into the image; they must include one named autocrane")
	fs.StringVar(&o.push, "push", "", "also push the AutoCrane image to this registry reference, e.g. registry.example:5000/autocrane:dev; credentials from $DOCKER_CONFIG or ~/.docker/config.json, else anonymous; empty: do not push")
	fs.BoolVar(&o.pushInsecure, "push-insecure", false, "allow --push to a registry served over plain HTTP")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, o
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs, o := newFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imagebuild: unexpected arguments %q; see --help\n", fs.Args())
		return 2
	}
	log := newLogger(stderr)
	if err := build(ctx, log, o); err != nil {
		log.Error(err, "image build failed")
		return 1
	}
	return 0
}

// newLogger prints one plain line per step, for people watching make.
func newLogger(w io.Writer) logr.Logger {
	return funcr.New(func(prefix, args string) {
		if args != "" {
			args = " " + args
		}
		fmt.Fprintf(w, "imagebuild: %s%s\n", prefix, args)
	}, funcr.Options{})
}
