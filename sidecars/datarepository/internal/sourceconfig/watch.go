package sourceconfig

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// Watcher signals when the configuration files may have changed.
type Watcher struct {
	// Files are the files to watch; their directories are watched, since
	// the kubelet replaces a "..data" symlink rather than the file.
	Files []string
	// Interval is the poll fallback: a signal at least this often.
	Interval time.Duration
	// Clock drives the poll. Nil means the real clock.
	Clock clock.WithTicker
	// Log receives watch failures (the poll still runs).
	Log logr.Logger
}

// Run sends on changed (without blocking: one pending signal is enough)
// until ctx ends.
func (w *Watcher) Run(ctx context.Context, changed chan<- struct{}) {
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	clk := w.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw := w.startNotify(); fw != nil {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}
	var tick <-chan time.Time
	if w.Interval > 0 {
		t := clk.NewTicker(w.Interval)
		defer t.Stop()
		tick = t.C()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			signal()
		case err := <-errs:
			w.Log.Error(err, "watching the sources files failed; polling still runs")
		case <-tick:
			signal()
		}
	}
}

// startNotify watches the files' directories, or returns nil when it
// cannot (the poll then does the work).
func (w *Watcher) startNotify() *fsnotify.Watcher {
	var dirs []string
	for _, f := range w.Files {
		if f != "" {
			dirs = append(dirs, filepath.Dir(f))
		}
	}
	slices.Sort(dirs)
	dirs = slices.Compact(dirs)
	if len(dirs) == 0 {
		return nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.Log.Error(err, "cannot watch the sources files; polling only")
		return nil
	}
	for _, d := range dirs {
		if err := fw.Add(d); err != nil {
			w.Log.Error(err, "cannot watch a directory; polling only for it", "directory", d)
		}
	}
	return fw
}
