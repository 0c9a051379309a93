package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
)

const usage = `Usage: hack/cluster-up [flags]      (go run ./hack/cluster up [flags])
       hack/cluster-down [flags]    (go run ./hack/cluster down [flags])
       go run ./hack/cluster load [flags]
       go run ./hack/cluster check [flags]

Starts or stops a real single-node Kubernetes cluster on this machine, for
AutoCrane's end-to-end tests (make e2e). Needs root; run from the repository.

up    installs what is missing with apt-get (containerd, runc,
      containernetworking-plugins, iptables, conntrack, nftables), builds or reuses
      Kubernetes v1.37.1 and etcd (hack/envtest-assets.sh) and CoreDNS from
      the Go module proxy, then starts etcd, kube-apiserver,
      kube-controller-manager, kube-scheduler, a private containerd, the
      kubelet (node "localhost"), kube-proxy (iptables) and CoreDNS, on a
      bridge that forwards nothing off the machine. It imports every
      --images-dir/*.tar (make images) into containerd, and prints
      "export KUBECONFIG=WORKDIR/kubeconfig". If the start fails or is
      interrupted, it tears down what it started.
down  stops every recorded process and removes every mount, cgroup,
      bridge, route, iptables rule and host path the start created, and
      restores the sysctls; safe to run twice, or after a half start. The
      logs stay in WORKDIR/logs.
load  imports --images-dir/*.tar into the running cluster's containerd
      (after make images); pods see new images once they are recreated.
check does what up does before it changes anything, and stops there:
      root, the tools (installed with apt-get when missing), no cluster
      recorded in WORKDIR, no other kubelet, free address ranges. It exits
      0 when up could start, else 1 naming what is missing (make demo uses
      it to choose between a real cluster and a bare control plane).

Every flag can also be set through the environment variable shown after it;
the flag wins. Flags:
`

// options are the command line.
type options struct {
	cfg           config
	keepOnFailure bool
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func defaultCacheDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "autocrane")
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *options) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &o.cfg
	fs.StringVar(&c.WorkDir, "work-dir", envOr("AUTOCRANE_CLUSTER_DIR", "/tmp/autocrane-cluster"),
		"directory of everything the cluster writes: journal, kubeconfig, certificates, data, logs ($AUTOCRANE_CLUSTER_DIR)")
	fs.StringVar(&c.CacheDir, "cache-dir", os.Getenv("AUTOCRANE_CACHE"),
		"cache of the built binaries, shared with hack/envtest-assets.sh; empty: ${XDG_CACHE_HOME:-~/.cache}/autocrane ($AUTOCRANE_CACHE)")
	fs.StringVar(&c.ImagesDir, "images-dir", envOr("AUTOCRANE_CLUSTER_IMAGES", "_output/images"),
		"directory whose *.tar image archives are imported into containerd ($AUTOCRANE_CLUSTER_IMAGES)")
	fs.StringVar(&c.PodCIDR, "pod-cidr", envOr("AUTOCRANE_CLUSTER_POD_CIDR", "10.213.0.0/24"),
		"pod range on the bridge; its first address is the bridge, node and apiserver address ($AUTOCRANE_CLUSTER_POD_CIDR)")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", envOr("AUTOCRANE_CLUSTER_SERVICE_CIDR", "10.213.64.0/24"),
		"Service range, routed to the bridge; .1 is the kubernetes Service, .10 CoreDNS ($AUTOCRANE_CLUSTER_SERVICE_CIDR)")
	fs.StringVar(&c.Bridge, "bridge", envOr("AUTOCRANE_CLUSTER_BRIDGE", "autocrane0"),
		"name of the bridge interface to create ($AUTOCRANE_CLUSTER_BRIDGE)")
	fs.StringVar(&c.CoreDNSVersion, "coredns-version", envOr("AUTOCRANE_COREDNS_VERSION", "v1.15.0"),
		"version of github.com/coredns/coredns to build ($AUTOCRANE_COREDNS_VERSION)")
	fs.BoolVar(&o.keepOnFailure, "keep-on-failure", os.Getenv("AUTOCRANE_CLUSTER_KEEP_ON_FAILURE") == "true",
		"up only: leave a failed start running for inspection instead of tearing it down ($AUTOCRANE_CLUSTER_KEEP_ON_FAILURE=true)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, o
}

func main() {
	// Ctrl-C or SIGTERM cancels the context; up then tears down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs, _ := newFlags("cluster", stderr)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return 0
		}
		fmt.Fprintln(stderr, "cluster: want a command: up, down, load or check; see --help")
		return 2
	}
	command := args[0]
	switch command {
	case "up", "down", "load", "check":
	default:
		fmt.Fprintf(stderr, "cluster: unknown command %q: want up, down, load or check; see --help\n", command)
		return 2
	}
	fs, o := newFlags(command, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cluster: unexpected arguments %q; see --help\n", fs.Args())
		return 2
	}
	log := newLogger(stderr)
	if err := o.resolve(ctx); err != nil {
		log.Error(err, "bad configuration")
		return 2
	}
	// One command at a time per work directory: a down started while an up
	// is still starting (or tearing down after Ctrl-C) waits for it.
	unlock, err := lockWorkDir(o.cfg.WorkDir)
	if err != nil {
		log.Error(err, "locking the work directory")
		return 1
	}
	defer unlock()
	switch command {
	case "up":
		err = up(ctx, log, o.cfg, upOptions{keepOnFailure: o.keepOnFailure})
	case "down":
		// Teardown must finish even when interrupted.
		err = down(context.WithoutCancel(ctx), log, o.cfg.WorkDir)
	case "load":
		err = load(ctx, log, o.cfg)
	case "check":
		if err = preflight(ctx, log, o.cfg); err == nil {
			log.Info("this machine can start the cluster", "workDir", o.cfg.WorkDir)
		}
	}
	if err != nil {
		log.Error(err, command+" failed")
		return 1
	}
	return 0
}

// resolve makes the paths absolute and finds the repository root.
func (o *options) resolve(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("run from AutoCrane's repository (no go.mod found)")
	}
	o.cfg.RepoDir = filepath.Dir(gomod)
	if o.cfg.CacheDir == "" {
		o.cfg.CacheDir = defaultCacheDir()
	}
	for _, p := range []*string{&o.cfg.WorkDir, &o.cfg.CacheDir, &o.cfg.ImagesDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return fmt.Errorf("resolving %s: %w", *p, err)
		}
	}
	if o.cfg.WorkDir == "/" {
		return errors.New("--work-dir must not be /")
	}
	return nil
}

// lockWorkDir takes an exclusive lock on WORKDIR.lock, next to the work
// directory (which up empties), waiting for another command to finish.
func lockWorkDir(workDir string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(workDir), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(workDir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// load imports the image tarballs into a running cluster.
func load(ctx context.Context, log logr.Logger, c config) error {
	j, err := loadJournal(c.WorkDir)
	if err != nil {
		return fmt.Errorf("no running cluster in %s: %w", c.WorkDir, err)
	}
	images, err := projectImages(c)
	if err != nil {
		return err
	}
	j.Config.ImagesDir = c.ImagesDir
	return importImages(ctx, log, j.Config, images)
}

// newLogger prints one line per step, for people watching the start.
func newLogger(w io.Writer) logr.Logger {
	return funcr.New(func(prefix, args string) {
		fmt.Fprintf(w, "cluster: %s\n", args)
	}, funcr.Options{})
}
