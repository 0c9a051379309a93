package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// ctr runs containerd's CLI against the private instance.
func ctr(ctx context.Context, c config, args ...string) (string, error) {
	return runCmd(ctx, "ctr", append([]string{"--address", c.containerdSocket(), "--namespace", containerdNamespace}, args...)...)
}

// importImages loads image tarballs into the CRI plugin's namespace, where
// the kubelet finds them (pods must not pull: imagePullPolicy Never or
// IfNotPresent).
func importImages(ctx context.Context, log logr.Logger, c config, files []string) error {
	for _, f := range files {
		log.Info("importing image", "file", f)
		out, err := ctr(ctx, c, "images", "import", f)
		if err != nil {
			return fmt.Errorf("importing %s: %w", f, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line != "" {
				log.Info("imported", "image", strings.TrimSpace(line))
			}
		}
	}
	return nil
}

// taskDir is where the runc v2 shims keep each container's bundle
// (config.json, init.pid, the shim's socket address) in the private state
// directory.
func taskDir(c config) string {
	return c.path("containerd", "state", "io.containerd.runtime.v2.task", containerdNamespace)
}

// bundle is what down needs of one container.
type bundle struct {
	id         string
	netns      string // the sandbox's network namespace file, if any
	initPID    int
	shimSocket string // the shim's socket, under /run/containerd/s
}

// listBundles reads the private state directory: every container's network
// namespace and PIDs, also when containerd itself is gone.
func listBundles(c config) ([]bundle, error) {
	entries, err := os.ReadDir(taskDir(c))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading containerd's task directory: %w", err)
	}
	var out []bundle
	for _, e := range entries {
		dir := filepath.Join(taskDir(c), e.Name())
		b := bundle{id: e.Name(), initPID: readPID(filepath.Join(dir, "init.pid"))}
		if spec, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
			b.netns = networkNamespacePath(spec)
		}
		if addr, err := os.ReadFile(filepath.Join(dir, "address")); err == nil {
			b.shimSocket = shimSocketPath(string(addr))
		}
		out = append(out, b)
	}
	return out, nil
}

// networkNamespacePath returns the network namespace file that the CRI
// plugin created for a sandbox (under /run/netns) and its OCI runtime spec
// joins; "" for containers, which join their sandbox's through /proc.
func networkNamespacePath(spec []byte) string {
	var s struct {
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if json.Unmarshal(spec, &s) != nil {
		return ""
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" && (strings.HasPrefix(ns.Path, "/run/netns/") || strings.HasPrefix(ns.Path, "/var/run/netns/")) {
			return ns.Path
		}
	}
	return ""
}

// shimSocketPath turns a shim's address file (unix:///run/containerd/s/HEX)
// into the socket's path; anything outside /run/containerd/s/ is ignored.
func shimSocketPath(address string) string {
	p := strings.TrimPrefix(strings.TrimSpace(address), "unix://")
	if !strings.HasPrefix(p, "/run/containerd/s/") || strings.Contains(p, "..") {
		return ""
	}
	return p
}

// ourShims lists the runc v2 shims of the private containerd: their
// command line names its socket, which no other containerd uses.
func ourShims(c config) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if isOurShim(pid, c) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func readPID(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// removeContainers stops every container of the private containerd: through
// containerd while it runs, then by the PIDs the shims wrote (init.pid),
// checking that each PID still belongs to that container (its cgroup names
// the container), then the shims themselves (their command line names the
// private socket). Then it unmounts and removes the sandboxes' network
// namespaces, which takes their veths away.
func removeContainers(ctx context.Context, log logr.Logger, c config) error {
	bundles, err := listBundles(c)
	if err != nil {
		return err
	}
	if _, err := os.Stat(c.containerdSocket()); err == nil {
		if out, err := ctr(ctx, c, "tasks", "list", "--quiet"); err == nil {
			for _, id := range strings.Fields(out) {
				log.Info("killing container", "id", shortID(id))
				_, _ = ctr(ctx, c, "tasks", "kill", "--signal", "SIGKILL", "--all", id)
				_, _ = ctr(ctx, c, "tasks", "delete", "--force", id)
			}
		}
	}
	var errs []error
	for _, b := range bundles {
		if b.initPID > 0 && belongsToContainer(b.initPID, b.id) {
			log.Info("killing container process", "id", shortID(b.id), "pid", b.initPID)
			if err := syscall.Kill(b.initPID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("killing container %s: %w", shortID(b.id), err))
			}
		}
	}
	for _, pid := range ourShims(c) {
		if err := stopProcess(ctx, log, processFor("containerd-shim", pid), 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range bundles {
		// A shim killed rather than stopped leaves its socket behind.
		if b.shimSocket == "" {
			continue
		}
		if err := os.Remove(b.shimSocket); err == nil {
			log.Info("removed", "path", b.shimSocket)
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, b := range bundles {
		// libcni caches each attachment's result as NETWORK-ID-IFNAME; a
		// killed sandbox leaves them behind.
		cached, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", "*-"+b.id+"-*"))
		for _, f := range cached {
			log.Info("removing", "path", f)
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if b.netns == "" {
			continue
		}
		if _, err := os.Lstat(b.netns); err != nil {
			continue
		}
		log.Info("removing network namespace", "path", b.netns)
		if err := syscall.Unmount(b.netns, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", b.netns, err))
		}
		if err := os.Remove(b.netns); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", b.netns, err))
		}
	}
	return errors.Join(errs...)
}

// processFor wraps a live PID whose identity was checked another way.
func processFor(name string, pid int) process {
	start, _ := processStartTime(pid)
	return process{Name: name, PID: pid, StartTime: start}
}

func belongsToContainer(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return err == nil && strings.Contains(string(b), id)
}

func isOurShim(pid int, c config) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") &&
		strings.Contains(string(b), c.containerdSocket())
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
