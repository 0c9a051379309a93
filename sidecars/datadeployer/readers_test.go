package datadeployer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/autocrane/autocrane/spec"
)

// reader reads a deployment through LOCATION/NAME the three ways
// docs/datadeployer.md describes, and checks what each guarantees:
//
//  1. one file by its path: never missing, always a whole version;
//  2. the link resolved once (os.Readlink), then two files under the
//     target: both from the same version;
//  3. the directory opened once (os.OpenRoot resolves the link once), then
//     two files through it: both from the same version.
//
// Reading two files by path, one after the other, may legitimately see
// two versions (a swap in between); mixed counts how often that happened.
type reader struct {
	link  string
	valid map[string]bool
	// pathOnly limits the reader to 1.: with garbage collection running, a
	// version resolved once may be collected two swaps later, which the
	// design allows (docs/datadeployer.md).
	pathOnly bool
	reads    atomic.Int64
	mixed    atomic.Int64
}

func (r *reader) once() error {
	a, err := os.ReadFile(filepath.Join(r.link, "a.txt"))
	if err != nil {
		return fmt.Errorf("read by path: %w", err)
	}
	if !r.valid[string(a)] {
		return fmt.Errorf("read by path: a.txt holds %q, no version's content", a)
	}
	if b, err := os.ReadFile(filepath.Join(r.link, "sub", "b.txt")); err != nil {
		return fmt.Errorf("read by path: %w", err)
	} else if string(b) != string(a) {
		r.mixed.Add(1)
	}
	if r.pathOnly {
		r.reads.Add(1)
		return nil
	}

	target, err := os.Readlink(r.link)
	if err != nil {
		return fmt.Errorf("readlink: %w", err)
	}
	dir := filepath.Join(filepath.Dir(r.link), target)
	a, errA := os.ReadFile(filepath.Join(dir, "a.txt"))
	b, errB := os.ReadFile(filepath.Join(dir, "sub", "deeper", "c.txt"))
	if err := errors.Join(errA, errB); err != nil {
		return fmt.Errorf("read through the resolved link %s: %w", target, err)
	}
	if string(a) != string(b) {
		return fmt.Errorf("resolved link %s: a.txt %q but c.txt %q", target, a, b)
	}

	root, err := os.OpenRoot(r.link)
	if err != nil {
		return fmt.Errorf("open the directory: %w", err)
	}
	defer root.Close()
	a, errA = root.ReadFile("a.txt")
	b, errB = root.ReadFile("sub/b.txt")
	if err := errors.Join(errA, errB); err != nil {
		return fmt.Errorf("read through the open directory: %w", err)
	}
	if string(a) != string(b) {
		return fmt.Errorf("open directory: a.txt %q but b.txt %q", a, b)
	}
	r.reads.Add(1)
	return nil
}

// run reads until stop is closed and at least minReads reads were done.
func (r *reader) run(stop <-chan struct{}, minReads int64) error {
	for {
		select {
		case <-stop:
			if r.reads.Load() >= minReads {
				return nil
			}
		default:
		}
		if err := r.once(); err != nil {
			return err
		}
	}
}

// waitReads blocks until the reader has done n more reads than since, or
// failed.
func waitReads(r *reader, since, n int64, failed <-chan struct{}) bool {
	for r.reads.Load() < since+n {
		select {
		case <-failed:
			return false
		default:
		}
	}
	return true
}

// TestReadersDuringSwaps: 10,000 reads during 100 swaps of the publish
// step between ten extracted versions.
func TestReadersDuringSwaps(t *testing.T) {
	location := t.TempDir()
	st, err := openStore(location)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const nVersions, swaps, reads = 10, 100, 10_000
	var hexes []string
	valid := map[string]bool{}
	for i := range nVersions {
		v := newVersion(t, fmt.Sprintf("v%d", i))
		h := v.digest[7:]
		if err := st.staging.WriteFile(verifiedBlob(h), v.content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := st.extract(t.Context(), h, verifiedBlob(h), testLimits()); err != nil {
			t.Fatal(err)
		}
		hexes = append(hexes, h)
		valid[v.id] = true
	}
	if err := st.publish("models", hexes[0]); err != nil {
		t.Fatal(err)
	}
	r := &reader{link: filepath.Join(location, "models"), valid: valid}
	stop, failed := make(chan struct{}), make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		if readErr = r.run(stop, reads); readErr != nil {
			close(failed)
		}
	})
	for i := 1; i <= swaps; i++ {
		// Interleave without timing: each swap waits for its share of reads.
		if !waitReads(r, r.reads.Load(), reads/swaps, failed) {
			break
		}
		if err := st.publish("models", hexes[i%nVersions]); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("after %d reads: %v", r.reads.Load(), readErr)
	}
	t.Logf("%d reads during %d swaps; %d path-by-path pairs saw two versions (allowed)", r.reads.Load(), swaps, r.mixed.Load())
}

// TestReadersDuringDeployerSwaps: the same guarantees hold with the whole
// deployer (downloads, rollbacks, garbage collection) swapping.
func TestReadersDuringDeployerSwaps(t *testing.T) {
	h := newHarness(t, nil)
	var vs []version
	valid := map[string]bool{}
	for i := range 4 {
		v := newVersion(t, fmt.Sprintf("v%d", i))
		h.repo.Add(v.content)
		vs = append(vs, v)
		valid[v.id] = true
	}
	h.start()
	h.request("models", vs[0])
	h.waitLive("models", vs[0])
	r := &reader{link: filepath.Join(h.location, "models"), valid: valid, pathOnly: true}
	stop, failed := make(chan struct{}), make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		if readErr = r.run(stop, 1000); readErr != nil {
			close(failed)
		}
	})
	const swaps = 40
	for i := 1; i <= swaps; i++ {
		if !waitReads(r, r.reads.Load(), 25, failed) {
			break
		}
		// Back and forth between neighbours (rollbacks from disk), and
		// onwards (downloads, collecting old versions).
		v := vs[(i/2+i%2)%len(vs)]
		h.request("models", v)
		h.waitStatus("models", "live on "+v.id, func(s DeploymentStatus) bool { return s.Digest == v.digest && s.State == spec.DataLive })
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("after %d reads: %v", r.reads.Load(), readErr)
	}
}
