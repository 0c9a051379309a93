package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
)

// hostPaths are paths outside the work directory that containerd, the CNI
// plugins, the kubelet or iptables create when missing, whatever their
// configuration says. up journals those that are absent; down removes
// them again.
func hostPaths() []string {
	return []string{
		"/run/containerd",     // containerd's shim sockets (/run/containerd/s)
		"/run/netns",          // the pods' network namespaces
		"/var/lib/cni",        // libcni's result cache
		"/var/log/containers", // the kubelet's log symlinks
		"/run/xtables.lock",   // iptables' lock
		"/var/lib/kubelet",
		"/var/log/pods",
		"/etc/cni",
		"/opt/cni",
		"/opt/containerd",
		"/var/lib/containerd",
		"/usr/libexec/kubernetes",
	}
}

// kernelSysctls are the sysctls the kubelet sets at start
// (protectKernelDefaults: false) and kube-proxy may set; up journals them
// before the kubelet starts and down puts them back.
func kernelSysctls() []string {
	return []string{
		"vm/overcommit_memory",
		"vm/panic_on_oom",
		"kernel/panic",
		"kernel/panic_on_oops",
		"kernel/keys/root_maxkeys",
		"kernel/keys/root_maxbytes",
		"net/ipv4/conf/all/route_localnet",
		"net/bridge/bridge-nf-call-iptables",
		"net/netfilter/nf_conntrack_max",
		"net/netfilter/nf_conntrack_tcp_timeout_established",
		"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
	}
}

// cgroupRoot is where the kubelet, with the cgroupfs driver, creates its
// kubepods hierarchy, one per controller.
const cgroupRoot = "/sys/fs/cgroup"

// requiredTools maps each command the cluster runs to the Debian package
// that has it.
func requiredTools() map[string]string {
	return map[string]string{
		"containerd":              "containerd",
		"containerd-shim-runc-v2": "containerd",
		"ctr":                     "containerd",
		"runc":                    "runc",
		"iptables":                "iptables",
		"iptables-save":           "iptables",
		"conntrack":               "conntrack",
		"ip":                      "iproute2",
	}
}

// cniPlugins are the plugins of /usr/lib/cni the network uses.
func cniPlugins() []string { return []string{"bridge", "host-local", "loopback"} }

// ensureHostTools refuses to run without root, and installs the Debian
// packages of missing tools with apt-get; what still misses is named.
func ensureHostTools(ctx context.Context, log logr.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("the cluster needs root: it runs containerd and the kubelet, and creates a bridge, a route and iptables rules")
	}
	missing := missingPackages()
	if len(missing) > 0 {
		if _, err := exec.LookPath("apt-get"); err != nil {
			return fmt.Errorf("missing %s, and apt-get is not there to install them", strings.Join(missing, ", "))
		}
		log.Info("installing Debian packages", "packages", strings.Join(missing, " "))
		if _, err := runCmd(ctx, "apt-get", "update", "-qq"); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get install %s: %w: %s", strings.Join(missing, " "), err, lastLines(string(out), 10))
		}
	}
	if still := missingPackages(); len(still) > 0 {
		return fmt.Errorf("still missing after apt-get: packages %s", strings.Join(still, ", "))
	}
	return nil
}

// missingPackages lists the Debian packages whose tools are missing.
func missingPackages() []string {
	need := map[string]bool{}
	for tool, pkg := range requiredTools() {
		if _, err := exec.LookPath(tool); err != nil {
			need[pkg] = true
		}
	}
	for _, p := range cniPlugins() {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			need["containernetworking-plugins"] = true
		}
	}
	out := make([]string, 0, len(need))
	for pkg := range need {
		out = append(out, pkg)
	}
	sort.Strings(out)
	return out
}

// recordAbsentPaths journals which host paths do not exist yet.
func recordAbsentPaths(j *journal) error {
	for _, p := range hostPaths() {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			j.AbsentPaths = append(j.AbsentPaths, p)
		}
	}
	return j.save()
}

// removeCreatedPaths removes the host paths that were absent before up,
// after unmounting what is mounted below them (network namespaces).
func removeCreatedPaths(log logr.Logger, j *journal) error {
	var errs []error
	for _, p := range j.AbsentPaths {
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := unmountUnder(log, p); err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info("removing", "path", p)
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// kubepodsCgroups lists the kubepods directories of every controller.
func kubepodsCgroups() []string {
	matches, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "kubepods"))
	return matches
}

// removeCgroups removes the kubelet's kubepods hierarchy, children first.
// A cgroup directory can only be removed with rmdir, once it has no
// processes, so this runs after every container is gone.
func removeCgroups(log logr.Logger) error {
	var errs []error
	for _, root := range kubepodsCgroups() {
		log.Info("removing cgroup", "path", root)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
