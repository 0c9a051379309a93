package podinfo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func mkdirTemp(dir string) (string, error) {
	ts, err := os.MkdirTemp(dir, "..podinfo_")
	if err != nil {
		return "", fmt.Errorf("write pod annotations: %w", err)
	}
	if err := os.Chmod(ts, 0o755); err != nil {
		return "", fmt.Errorf("write pod annotations: %w", err)
	}
	return ts, nil
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write pod annotations: %w", err)
	}
	return nil
}

// replaceSymlink points link at target atomically (a new link renamed over
// the old), then removes the directory the old link pointed to.
func replaceSymlink(target, tmp, link string) error {
	old, _ := os.Readlink(link)
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("write pod annotations: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("write pod annotations: %w", err)
	}
	if old != "" && old != target && strings.HasPrefix(old, "..podinfo_") {
		_ = os.RemoveAll(filepath.Join(filepath.Dir(link), old))
	}
	return nil
}

func readlink(path string) (string, error) { return os.Readlink(path) }
func symlink(target, link string) error    { return os.Symlink(target, link) }
