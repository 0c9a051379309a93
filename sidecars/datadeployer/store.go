package datadeployer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/autocrane/autocrane/sidecars/datadeployer/archive"
	"github.com/autocrane/autocrane/sidecars/datadeployer/fetch"
)

// The layout under LOCATION. Apps rely only on LOCATION/NAME.
const (
	metaDir     = ".autocrane"
	versionsDir = metaDir + "/versions"
	stagingDir  = metaDir + "/staging"
	stateFile   = metaDir + "/state.json"
	// swapPrefix + NAME is the new symlink before it is renamed over NAME.
	// Deployment names are DNS labels, so they never start with ".".
	swapPrefix = ".autocrane-swap-"
	// Work directories in versions/, never a published version.
	tmpPrefix   = ".tmp-"
	trashPrefix = ".trash-"
)

// Errors about LOCATION/NAME; match them with errors.Is.
var (
	// ErrNoLink: LOCATION/NAME does not exist yet.
	ErrNoLink = errors.New("not published yet")
	// ErrNotOurs: LOCATION/NAME exists but is not a symlink the datadeployer
	// made; it is never deleted or replaced.
	ErrNotOurs = errors.New("refusing to replace it (move it away)")
	// ErrStagedBlobChanged: the blob on disk no longer matches its digest.
	ErrStagedBlobChanged = errors.New("staged blob no longer matches its digest")
)

// store does every filesystem operation under LOCATION, all through an
// os.Root: app containers share the volume, and a path they swap for a
// symlink must not lead a write outside it.
type store struct {
	location string
	root     *os.Root
	staging  *os.Root
}

func openStore(location string) (*store, error) {
	root, err := os.OpenRoot(location)
	if err != nil {
		return nil, fmt.Errorf("open --location: %w", err)
	}
	s := &store{location: location, root: root}
	for _, d := range []struct {
		name string
		mode os.FileMode
	}{{metaDir, 0o755}, {versionsDir, 0o755}, {stagingDir, 0o700}} {
		if err := s.mkdir(d.name, d.mode); err != nil {
			root.Close()
			return nil, err
		}
	}
	if s.staging, err = root.OpenRoot(stagingDir); err != nil {
		root.Close()
		return nil, fmt.Errorf("open %s: %w", stagingDir, err)
	}
	return s, nil
}

func (s *store) Close() error {
	return errors.Join(s.staging.Close(), s.root.Close())
}

// mkdir makes a directory with exactly mode, whatever the umask, unless
// it exists.
func (s *store) mkdir(name string, mode os.FileMode) error {
	err := s.root.Mkdir(name, mode)
	if errors.Is(err, fs.ErrExist) {
		info, err := s.root.Lstat(name)
		if err != nil || !info.IsDir() {
			return fmt.Errorf("%s/%s exists and is not a directory", s.location, name)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	return s.chmodDir(s.root, name, mode)
}

func (s *store) chmodDir(r *os.Root, name string, mode os.FileMode) error {
	d, err := r.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	err = d.Chmod(mode)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set the mode of %s: %w", name, err)
	}
	return nil
}

// hasVersion reports whether versions/HEX holds an extracted version.
// Only complete, verified trees are ever renamed there.
func (s *store) hasVersion(hexDigest string) bool {
	info, err := s.root.Lstat(versionsDir + "/" + hexDigest)
	return err == nil && info.IsDir()
}

// extract unpacks the verified blob staging/blob into versions/HEX: into a
// private temp directory first, hashing the bytes again as they are read
// (the staged file could have changed since it was verified), then
// checking the tree, then renaming it into place.
func (s *store) extract(ctx context.Context, hexDigest, blob string, lim archive.Limits) (archive.Stats, error) {
	tmp := versionsDir + "/" + tmpPrefix + hexDigest[:12] + "-" + randomSuffix()
	if err := s.root.Mkdir(tmp, 0o700); err != nil {
		return archive.Stats{}, fmt.Errorf("create extraction directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = s.root.RemoveAll(tmp)
		}
	}()
	xr, err := s.root.OpenRoot(tmp)
	if err != nil {
		return archive.Stats{}, fmt.Errorf("open extraction directory: %w", err)
	}
	defer xr.Close()
	f, err := s.staging.OpenFile(blob, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return archive.Stats{}, fmt.Errorf("open staged blob: %w", err)
	}
	defer f.Close()
	sum := sha256.New()
	stats, err := archive.Extract(ctx, xr, io.TeeReader(f, sum), lim)
	if err != nil {
		return stats, err
	}
	// The tar end marker may leave bytes unread; they count too.
	if _, err := io.Copy(sum, f); err != nil {
		return stats, fmt.Errorf("read staged blob: %w", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != hexDigest {
		return stats, fmt.Errorf("%w: sha256:%s", ErrStagedBlobChanged, got)
	}
	if err := archive.VerifyTree(xr, lim); err != nil {
		return stats, err
	}
	if err := s.chmodDir(xr, ".", archive.DirMode); err != nil {
		return stats, err
	}
	// Rename the directory written to, not whatever may now stand at its name.
	inside, err1 := xr.Stat(".")
	outside, err2 := s.root.Lstat(tmp)
	if err := errors.Join(err1, err2); err != nil || !os.SameFile(inside, outside) {
		return stats, fmt.Errorf("extraction directory %s was replaced during extraction", tmp)
	}
	if err := s.root.Rename(tmp, versionsDir+"/"+hexDigest); err != nil {
		return stats, fmt.Errorf("move the extracted version into place: %w", err)
	}
	done = true
	return stats, nil
}

// publish points LOCATION/NAME at versions/HEX: a new symlink renamed over
// the old one (rename(2) is atomic), so a reader resolving the path finds
// the old version or the new one, never nothing.
func (s *store) publish(name, hexDigest string) error {
	if err := s.checkOurs(name); err != nil {
		return err
	}
	tmp := swapPrefix + name
	if err := s.root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove a stale %s: %w", tmp, err)
	}
	if err := s.root.Symlink(LinkTarget(hexDigest), tmp); err != nil {
		return fmt.Errorf("create symlink %s: %w", tmp, err)
	}
	if err := s.root.Rename(tmp, name); err != nil {
		_ = s.root.Remove(tmp)
		return fmt.Errorf("swap %s/%s: %w", s.location, name, err)
	}
	return nil
}

// checkOurs fails unless LOCATION/NAME is missing or a symlink into
// versions/ (which it is safe to replace).
func (s *store) checkOurs(name string) error {
	info, err := s.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s/%s: %w", s.location, name, err)
	}
	if info.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s/%s exists and is not a symlink to .autocrane/versions/; %w", s.location, name, ErrNotOurs)
	}
	target, err := s.root.Readlink(name)
	if err != nil {
		return fmt.Errorf("read link %s/%s: %w", s.location, name, err)
	}
	if _, ok := ParseLinkTarget(target); !ok {
		return fmt.Errorf("%s/%s is a symlink to %q, not into .autocrane/versions/; %w", s.location, name, target, ErrNotOurs)
	}
	return nil
}

// live reads what LOCATION/NAME points at, and when the link was made
// (a swap creates a new link, so that is when the version went live).
func (s *store) live(name string) (string, time.Time, error) {
	info, err := s.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", time.Time{}, ErrNoLink
	}
	if err := s.checkOurs(name); err != nil {
		return "", time.Time{}, err
	}
	target, err := s.root.Readlink(name)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read link %s/%s: %w", s.location, name, err)
	}
	hexDigest, _ := ParseLinkTarget(target)
	if !s.hasVersion(hexDigest) {
		return "", time.Time{}, fmt.Errorf("%s/%s points at a missing version %s", s.location, name, hexDigest)
	}
	return hexDigest, info.ModTime(), nil
}

// versions lists versions/: the published versions by hex, and the work
// directories (temp and trash) by name.
func (s *store) versions() (published, work []string, err error) {
	d, err := s.root.Open(versionsDir)
	if err != nil {
		return nil, nil, fmt.Errorf("list versions: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, nil, fmt.Errorf("list versions: %w", err)
	}
	for _, n := range names {
		switch {
		case isHex64(n):
			published = append(published, n)
		case strings.HasPrefix(n, tmpPrefix) || strings.HasPrefix(n, trashPrefix):
			work = append(work, n)
		}
	}
	return published, work, nil
}

// removeVersion takes a version out of versions/ at once (a rename), then
// deletes it; a crash in between leaves trash that the next start removes.
func (s *store) removeVersion(hexDigest string) error {
	trash := versionsDir + "/" + trashPrefix + hexDigest[:12] + "-" + randomSuffix()
	if err := s.root.Rename(versionsDir+"/"+hexDigest, trash); err != nil {
		return fmt.Errorf("remove version %s: %w", hexDigest, err)
	}
	if err := s.root.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove version %s: %w", hexDigest, err)
	}
	return nil
}

// removeWork deletes a temp or trash directory in versions/.
func (s *store) removeWork(name string) error {
	if err := s.root.RemoveAll(versionsDir + "/" + name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// stagedDigests lists the hex digests that have files in staging/.
func (s *store) stagedDigests() (map[string][]string, error) {
	d, err := s.staging.Open(".")
	if err != nil {
		return nil, fmt.Errorf("list staging: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list staging: %w", err)
	}
	out := map[string][]string{}
	for _, n := range names {
		h := n
		if i := strings.IndexByte(n, '.'); i >= 0 {
			h = n[:i]
		}
		out[h] = append(out[h], n)
	}
	return out, nil
}

func (s *store) removeStaged(name string) error {
	if err := s.staging.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove staged %s: %w", name, err)
	}
	return nil
}

// verifiedBlob is the staging name of a verified download.
func verifiedBlob(hexDigest string) string { return hexDigest + fetch.SuffixVerified }

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
