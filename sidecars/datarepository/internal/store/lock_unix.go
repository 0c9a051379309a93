//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockRoot takes an exclusive, non-blocking flock on path, so two processes
// never share a root. The kernel drops it if the process dies.
func lockRoot(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("root is in use by another process (lock %s)", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f.Close, nil
}
