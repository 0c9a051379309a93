package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
)

// mountPoints parses /proc/self/mountinfo and returns the mount points,
// with the octal escapes (\040 for a space, ...) decoded.
func mountPoints(mountinfo string) ([]string, error) {
	var out []string
	for i, line := range strings.Split(mountinfo, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 5 {
			return nil, fmt.Errorf("mountinfo line %d: want at least 5 fields, got %d", i+1, len(fields))
		}
		p, err := unescapeOctal(fields[4])
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// unescapeOctal decodes the kernel's \NNN escapes in mountinfo paths.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q: %w", s, err)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}

// mountsUnder returns the mount points at or below dir, deepest first, so
// they can be unmounted in that order.
func mountsUnder(points []string, dir string) []string {
	dir = strings.TrimSuffix(dir, "/")
	var out []string
	for _, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unmountUnder unmounts everything the kubelet and containerd mounted in
// dir (the kubelet bind-mounts its root directory, pods' volumes,
// overlay root file systems), repeating while the kernel lists any, since
// one path can be mounted several times over.
func unmountUnder(log logr.Logger, dir string) error {
	for range 20 {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("reading mountinfo: %w", err)
		}
		points, err := mountPoints(string(b))
		if err != nil {
			return err
		}
		todo := mountsUnder(points, dir)
		if len(todo) == 0 {
			return nil
		}
		var errs []error
		for _, p := range todo {
			log.Info("unmounting", "path", p)
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	return fmt.Errorf("mounts under %s keep coming back", dir)
}
