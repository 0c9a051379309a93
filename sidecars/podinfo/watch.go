package podinfo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// DefaultPollInterval is how often Watch re-reads the file when no change
// notification arrives: the fallback for file systems without inotify.
const DefaultPollInterval = 5 * time.Second

// Watcher calls OnChange with the pod's annotations when they change.
type Watcher struct {
	// Path is the annotations file.
	Path string
	// PollInterval is the fallback re-read interval; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// OnChange gets the annotations after the first successful read and
	// after every change. It runs on Watch's goroutine.
	OnChange func(map[string]string)
	Log      logr.Logger
}

// Watch reads the file now, then on every change notification for its
// directory (the kubelet swaps a ..data symlink, so the file itself is
// replaced, not written) and at every poll, until ctx ends. A read that
// fails is logged and retried; the last good annotations stay in effect.
func (w Watcher) Watch(ctx context.Context) error {
	if w.OnChange == nil {
		return errors.New("podinfo: Watcher.OnChange is nil")
	}
	interval := w.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var events <-chan fsnotify.Event
	notifier, err := fsnotify.NewWatcher()
	if err == nil {
		defer notifier.Close()
		if err = notifier.Add(filepath.Dir(w.Path)); err == nil {
			events = notifier.Events
		}
	}
	if err != nil {
		w.Log.Info("no change notifications; polling only", "path", w.Path, "interval", interval, "reason", err.Error())
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	var last map[string]string
	var lastErr string
	read := func() {
		m, err := Read(w.Path)
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				w.Log.Error(err, "cannot read pod annotations; keeping the last good ones")
				lastErr = msg
			}
			return
		}
		lastErr = ""
		if last != nil && maps.Equal(last, m) {
			return
		}
		last = m
		w.OnChange(m)
	}
	read()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			read()
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			read()
		}
	}
}

// WriteLikeKubelet writes annotations into dir the way the kubelet's
// downward API volume does: a timestamped directory holding the file, a
// ..data symlink swapped to it by rename, and file -> ..data/file. Tests
// that play the kubelet use it.
func WriteLikeKubelet(dir, file string, annotations map[string]string) error {
	ts, err := mkdirTemp(dir)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(ts, file), Format(annotations)); err != nil {
		return err
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	if err := replaceSymlink(filepath.Base(ts), tmpLink, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	userLink := filepath.Join(dir, file)
	if _, err := readlink(userLink); err != nil {
		if err := symlink(filepath.Join("..data", file), userLink); err != nil {
			return fmt.Errorf("link %s: %w", userLink, err)
		}
	}
	return nil
}
