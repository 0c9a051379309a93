package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// attack plays a process that shares the volume: until stop closes, it
// replaces every directory it finds (two levels deep) inside dir with a
// symlink to outside, alternating absolute and relative targets. It
// returns how many directories it swapped.
func attack(dir, outside string, stop <-chan struct{}) int64 {
	var swaps int64
	n := 0
	swap := func(p string) {
		n++
		moved := filepath.Join(dir, fmt.Sprintf(".moved-%d", n))
		if err := os.Rename(p, moved); err != nil {
			return
		}
		target := outside
		if n%2 == 0 {
			// Relative: climb out of dir and its parent, then into outside.
			rel, _ := filepath.Rel(filepath.Dir(p), outside)
			target = rel
		}
		if os.Symlink(target, p) == nil {
			swaps++
		}
	}
	for {
		select {
		case <-stop:
			return swaps
		default:
		}
		top, _ := os.ReadDir(dir)
		for _, e := range top {
			if !e.IsDir() || e.Name()[0] == '.' {
				continue
			}
			p := filepath.Join(dir, e.Name())
			sub, _ := os.ReadDir(p)
			for _, s := range sub {
				if s.IsDir() {
					swap(filepath.Join(p, s.Name()))
				}
			}
			swap(p)
		}
	}
}

// TestSymlinkSwapRaceWritesNothingOutside extracts, many times, an archive
// of nested directories while another goroutine swaps its directories for
// symlinks to a directory outside the root. Extraction may fail (it is
// refused when it meets such a link), but nothing may ever land outside.
func TestSymlinkSwapRaceWritesNothingOutside(t *testing.T) {
	var entries []entry
	for i := range 12 {
		for j := range 6 {
			for k := range 4 {
				entries = append(entries, file(fmt.Sprintf("d%d/e%d/f%d", i, j, k), "data"))
			}
			entries = append(entries, file(fmt.Sprintf("d%d/g%d", i, j), "data"))
		}
	}
	data := makeTar(t, entries...)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	location := filepath.Join(base, "location")
	for _, d := range []string{outside, location} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	iterations := 200
	if testing.Short() {
		iterations = 30
	}
	var totalSwaps, failed atomic.Int64
	for i := range iterations {
		dst := filepath.Join(location, fmt.Sprintf("x%d", i))
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dst)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { totalSwaps.Add(attack(dst, outside, stop)) })
		_, err = Extract(t.Context(), root, bytes.NewReader(data), DefaultLimits())
		if err == nil {
			err = VerifyTree(root, DefaultLimits())
		}
		close(stop)
		wg.Wait()
		root.Close()
		if err != nil {
			failed.Add(1)
		}
		left, err := os.ReadDir(outside)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Fatalf("iteration %d: extraction wrote outside the root: %v", i, left)
		}
		if err := os.RemoveAll(dst); err != nil {
			t.Fatal(err)
		}
	}
	// The test only proves something if the attacker got in.
	if totalSwaps.Load() == 0 || failed.Load() == 0 {
		t.Fatalf("the attack never hit an extraction (%d swaps, %d failed extractions); make the archive larger", totalSwaps.Load(), failed.Load())
	}
	t.Logf("%d iterations, %d directories swapped, %d extractions refused", iterations, totalSwaps.Load(), failed.Load())
}
