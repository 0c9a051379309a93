package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// stepTimeout bounds each wait; a warm start takes about 15 s in all.
const stepTimeout = 3 * time.Minute

// upOptions are the choices of one start.
type upOptions struct {
	keepOnFailure bool
}

// up starts the cluster. On failure or interrupt it tears down what it
// started, unless keepOnFailure, so the machine is as before.
func up(ctx context.Context, log logr.Logger, c config, o upOptions) (err error) {
	if err := preflight(ctx, log, c); err != nil {
		return err
	}

	log.Info("building or reusing the Kubernetes binaries (hack/envtest-assets.sh)")
	if c.KubeBin, err = kubeBinaries(ctx, c); err != nil {
		return err
	}
	corednsBin, err := corednsBinary(ctx, log, c)
	if err != nil {
		return err
	}
	if err := resetWorkDir(c.WorkDir); err != nil {
		return err
	}
	log.Info("building the pause and CoreDNS images")
	ownImages, err := clusterImages(ctx, c, corednsBin)
	if err != nil {
		return err
	}
	images, err := projectImages(c)
	if err != nil {
		return err
	}
	if len(images) == 0 {
		log.Info("no image tarballs to load; run make images for AutoCrane's", "dir", c.ImagesDir)
	}

	// From here on the host changes; the journal records each change first.
	j := newJournal(c.WorkDir, c)
	if err := j.save(); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		if o.keepOnFailure {
			log.Info("start failed; leaving the cluster as it is (--keep-on-failure); hack/cluster-down removes it")
			return
		}
		log.Info("start failed; tearing down", "error", err.Error())
		// The caller's context may be cancelled (Ctrl-C): tear down anyway.
		downCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := down(downCtx, log, c.WorkDir); derr != nil {
			err = errors.Join(err, fmt.Errorf("tearing down: %w", derr))
		}
	}()
	return start(ctx, log, j, append(ownImages, images...))
}

// preflight checks, before anything on the host changes, that up can
// start: root, the tools (installing missing Debian packages), no cluster
// recorded in the work directory, no other kubelet, free address ranges.
func preflight(ctx context.Context, log logr.Logger, c config) error {
	if err := c.validate(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.WorkDir, journalFile)); err == nil {
		return fmt.Errorf("a cluster (or what is left of one) is recorded in %s: run hack/cluster-down first", c.WorkDir)
	}
	if err := ensureHostTools(ctx, log); err != nil {
		return err
	}
	if cg := kubepodsCgroups(); len(cg) > 0 {
		return fmt.Errorf("%s exists: another kubelet runs on this machine, or one was not cleaned up", cg[0])
	}
	return checkRangesFree(ctx, c)
}

// start brings the components up in order, each waiting for the previous.
func start(ctx context.Context, log logr.Logger, j *journal, images []string) error {
	if err := recordAbsentPaths(j); err != nil {
		return err
	}
	for _, key := range kernelSysctls() {
		if err := recordSysctl(j, key); err != nil {
			return err
		}
	}
	if err := setUpNetwork(ctx, log, j); err != nil {
		return err
	}
	brNetfilter := false
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		brNetfilter = true
		if err := setSysctl(log, j, "net/bridge/bridge-nf-call-iptables", "1"); err != nil {
			return err
		}
	}
	if err := pickPorts(&j.Config); err != nil {
		return err
	}
	if err := j.save(); err != nil {
		return err
	}
	c := j.Config
	log.Info("writing certificates, kubeconfigs and component configs", "dir", c.WorkDir)
	if err := writePKI(c, time.Now()); err != nil {
		return err
	}
	if err := writeConfigs(c, brNetfilter); err != nil {
		return err
	}

	if err := startDaemon(log, j, "etcd", nil, etcdArgs(c)...); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "etcd", stepTimeout, func(ctx context.Context) error {
		return httpGetOK(ctx, c, fmt.Sprintf("http://127.0.0.1:%d/health", c.Ports.Etcd), false)
	}); err != nil {
		return err
	}
	if err := startDaemon(log, j, "kube-apiserver", nil, apiServerArgs(c)...); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "kube-apiserver", stepTimeout, func(ctx context.Context) error {
		return httpGetOK(ctx, c, c.apiServerURL()+"/readyz", true)
	}); err != nil {
		return err
	}
	if err := startDaemon(log, j, "kube-controller-manager", nil, controllerManagerArgs(c)...); err != nil {
		return err
	}
	if err := startDaemon(log, j, "kube-scheduler", nil, schedulerArgs(c)...); err != nil {
		return err
	}
	if err := startDaemon(log, j, "containerd", nil, "containerd", "--config", c.path("containerd", "config.toml")); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "containerd", stepTimeout, func(ctx context.Context) error {
		_, err := ctr(ctx, c, "version")
		return err
	}); err != nil {
		return err
	}
	if err := importImages(ctx, log, c, images); err != nil {
		return err
	}

	cs, err := clientset(c)
	if err != nil {
		return err
	}
	j.Kubelet = true
	if err := j.save(); err != nil {
		return err
	}
	if err := startDaemon(log, j, "kubelet", nil, kubeletArgs(c)...); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "node "+nodeName+" Ready", stepTimeout, nodeReady(cs)); err != nil {
		return err
	}
	j.KubeProxy = true
	if err := j.save(); err != nil {
		return err
	}
	if err := startDaemon(log, j, "kube-proxy", nil, kubeProxyArgs(c)...); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "kube-proxy", stepTimeout, func(ctx context.Context) error {
		return httpGetOK(ctx, c, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.Ports.KubeProxyHealthz), false)
	}); err != nil {
		return err
	}
	log.Info("deploying CoreDNS", "serviceIP", c.dnsIP())
	if err := kubectlApply(ctx, c, corednsManifest(c)); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "CoreDNS", stepTimeout, podsReady(cs, "kube-system", "k8s-app=kube-dns")); err != nil {
		return err
	}
	if err := waitFor(ctx, log, j, "the default ServiceAccount", stepTimeout, serviceAccountExists(cs, "default", "default")); err != nil {
		return err
	}
	log.Info("cluster is up", "kubeconfig", c.kubeconfig(), "apiserver", c.apiServerURL(), "logs", c.path("logs"))
	fmt.Printf("export KUBECONFIG=%s\n", c.kubeconfig())
	return nil
}

func pickPorts(c *config) error {
	var err error
	pick := func(host string, p *int) {
		if err == nil {
			*p, err = freePort(host)
		}
	}
	pick("127.0.0.1", &c.Ports.Etcd)
	pick("127.0.0.1", &c.Ports.EtcdPeer)
	pick(c.bridgeIP(), &c.Ports.APIServer)
	pick("127.0.0.1", &c.Ports.Kubelet)
	pick("127.0.0.1", &c.Ports.KubeProxyHealthz)
	pick("127.0.0.1", &c.Ports.KubeProxyMetrics)
	return err
}

// kubeBinaries runs hack/envtest-assets.sh with the node's programs added
// and returns the directory it prints.
func kubeBinaries(ctx context.Context, c config) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.RepoDir, "hack", "envtest-assets.sh"))
	cmd.Dir = c.RepoDir
	cmd.Env = append(os.Environ(), "EXTRA_BINARIES=kube-scheduler kubelet kube-proxy", "AUTOCRANE_CACHE="+c.CacheDir)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/envtest-assets.sh: %w", err)
	}
	dir := strings.TrimSpace(stdout.String())
	if dir == "" {
		return "", errors.New("hack/envtest-assets.sh printed no directory")
	}
	return dir, nil
}

func kubectlApply(ctx context.Context, c config, manifest string) error {
	cmd := exec.CommandContext(ctx, c.bin("kubectl"), "--kubeconfig", c.kubeconfig(), "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// workDirMarker marks a directory as a work directory of this tool, so
// that a mistyped --work-dir (a home directory, say) is never emptied.
const workDirMarker = ".autocrane-cluster"

// resetWorkDir empties the work directory of an earlier, torn-down run
// (its logs included) and creates it with its marker.
func resetWorkDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading %s: %w", dir, err)
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, workDirMarker)); err != nil {
			return fmt.Errorf("%s is not empty and is not a cluster work directory (no %s): pick another --work-dir", dir, workDirMarker)
		}
		if err := refuseMounts(dir); err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clearing %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return os.WriteFile(filepath.Join(dir, workDirMarker), nil, 0o644)
}

// refuseMounts fails when anything is mounted under dir: removing it would
// reach into the mounted file systems.
func refuseMounts(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mountinfo: %w", err)
	}
	points, err := mountPoints(string(b))
	if err != nil {
		return err
	}
	if m := mountsUnder(points, dir); len(m) > 0 {
		return fmt.Errorf("%s is still mounted: run hack/cluster-down", m[0])
	}
	return nil
}
