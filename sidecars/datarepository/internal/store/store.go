package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"
)

// Version is one version of a source.
type Version struct {
	ID       string    `json:"id"`
	Digest   string    `json:"digest"`
	Size     int64     `json:"size"`
	Created  time.Time `json:"created"`
	Revision string    `json:"revision"`
}

// Origin is what the last successful check saw at the source, so the next
// check can be cheap (ls-remote, a conditional GET). It only counts while
// Location is still the source's location.
type Origin struct {
	Location     string `json:"location"`
	Revision     string `json:"revision,omitempty"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
}

// Source is a source's persisted state.
type Source struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Location string `json:"location"`
	// Versions are sorted by id, oldest first.
	Versions []Version `json:"versions"`
	Pins     []string  `json:"pins"`
	Origin   Origin    `json:"origin"`
}

// Latest is the newest version, or nil.
func (s *Source) Latest() *Version {
	if len(s.Versions) == 0 {
		return nil
	}
	return &s.Versions[len(s.Versions)-1]
}

func (s *Source) clone() Source {
	c := *s
	c.Versions = slices.Clone(s.Versions)
	c.Pins = slices.Clone(s.Pins)
	return c
}

// Errors callers tell apart with errors.Is.
var (
	ErrUnknownSource  = errors.New("unknown source")
	ErrUnknownVersion = errors.New("unknown version")
)

// Options configure a Store.
type Options struct {
	// Root is the directory that holds everything. Required.
	Root string
	// Keep is how many of the newest versions of each source are kept,
	// besides the pinned ones. Zero means 5.
	Keep int
	// Clock stamps new versions. Nil means the real clock.
	Clock clock.PassiveClock
	// Log receives what Open repairs and what GC deletes.
	Log logr.Logger
	// OnBlobsDeleted, when set, is told how many blobs each GC deleted.
	OnBlobsDeleted func(n int)
}

// Store is the on-disk state. It is safe for concurrent use.
type Store struct {
	opts     Options
	blobDir  string
	srcDir   string
	unlock   func() error
	mu       sync.Mutex
	sources  map[string]*Source
	closed   bool
	closeErr error
}

// Open locks root, removes temporary files left by a crash, and loads every
// source's metadata. Versions whose blob is missing or has the wrong size
// are dropped, with a log line.
func Open(opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, errors.New("store root is empty")
	}
	if opts.Keep == 0 {
		opts.Keep = 5
	}
	if opts.Keep < 1 {
		return nil, fmt.Errorf("keep must be at least 1, not %d", opts.Keep)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &Store{
		opts:    opts,
		blobDir: filepath.Join(opts.Root, "blobs", "sha256"),
		srcDir:  filepath.Join(opts.Root, "sources"),
		sources: map[string]*Source{},
	}
	for _, d := range []string{s.blobDir, s.srcDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	unlock, err := lockRoot(filepath.Join(opts.Root, "lock"))
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	if err := s.load(); err != nil {
		unlock()
		return nil, err
	}
	return s, nil
}

// Close releases the root.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.closeErr = s.unlock()
	}
	return s.closeErr
}

func (s *Store) load() error {
	for _, dir := range []string{s.blobDir, s.srcDir} {
		if err := removeTemporary(dir); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.srcDir)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.srcDir, err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || len(validation.IsDNS1123Label(name)) > 0 {
			continue
		}
		src, err := s.readSource(name)
		if err != nil {
			return err
		}
		s.sources[name] = src
	}
	return nil
}

func removeTemporary(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove leftover %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

func (s *Store) readSource(name string) (*Source, error) {
	path := s.metaPath(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var src Source
	if err := json.Unmarshal(data, &src); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if src.Name != name {
		return nil, fmt.Errorf("%s holds source %q", path, src.Name)
	}
	kept := src.Versions[:0]
	for _, v := range src.Versions {
		if err := s.checkBlob(v); err != nil {
			s.opts.Log.Error(err, "dropping a version whose blob is damaged", "source", name, "version", v.ID)
			continue
		}
		kept = append(kept, v)
	}
	if len(kept) < len(src.Versions) {
		// The origin describes content that is partly gone: check afresh.
		src.Origin = Origin{}
	}
	src.Versions = kept
	slices.SortFunc(src.Versions, func(a, b Version) int { return strings.Compare(a.ID, b.ID) })
	src.Pins = slices.DeleteFunc(src.Pins, func(id string) bool { return src.find(id) < 0 })
	return &src, nil
}

func (s *Store) checkBlob(v Version) error {
	path, err := s.BlobPath(v.Digest)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("blob of version %s: %w", v.ID, err)
	}
	if fi.Size() != v.Size {
		return fmt.Errorf("blob of version %s has %d bytes, not %d", v.ID, fi.Size(), v.Size)
	}
	return nil
}

func (src *Source) find(id string) int {
	return slices.IndexFunc(src.Versions, func(v Version) bool { return v.ID == id })
}

func (s *Store) metaPath(name string) string { return filepath.Join(s.srcDir, name+".json") }

// persist writes a source's metadata. The caller holds s.mu.
func (s *Store) persist(src *Source) error {
	data, err := json.MarshalIndent(src, "", "  ")
	if err != nil {
		return fmt.Errorf("encode source %s: %w", src.Name, err)
	}
	return WriteFileAtomic(s.metaPath(src.Name), data)
}

// BlobPath is the file of a blob, from a checked digest. It is the only
// way a digest becomes a file name.
func (s *Store) BlobPath(digest string) (string, error) {
	hex, err := DigestHex(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir, hex), nil
}

// Names lists the sources on disk, sorted.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.sources))
}

// Get returns a copy of a source's state.
func (s *Store) Get(name string) (Source, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[name]
	if !ok {
		return Source{}, false
	}
	return src.clone(), true
}

// Declare records a source's kind and location, creating the source if it
// is new. Its versions stay when the location changes: they are still
// valid content, and the next check makes a new version if it differs.
func (s *Store) Declare(name, kind, location string) error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return fmt.Errorf("source name %q: %s", name, strings.Join(msgs, "; "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[name]
	if ok && src.Kind == kind && src.Location == location {
		return nil
	}
	next := &Source{Name: name, Kind: kind, Location: location}
	if ok {
		c := src.clone()
		next.Versions, next.Pins, next.Origin = c.Versions, c.Pins, c.Origin
	}
	if err := s.persist(next); err != nil {
		return err
	}
	s.sources[name] = next
	return nil
}

// Remove forgets a source and deletes the blobs no other source uses.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sources[name]; !ok {
		return nil
	}
	if err := os.Remove(s.metaPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove source %s: %w", name, err)
	}
	delete(s.sources, name)
	if err := syncDir(s.srcDir); err != nil {
		return err
	}
	return s.collectBlobs()
}

// RecordOrigin stores what a check saw, when it changed.
func (s *Store) RecordOrigin(name string, o Origin) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownSource, name)
	}
	if src.Origin == o {
		return nil
	}
	next := src.clone()
	next.Origin = o
	if err := s.persist(&next); err != nil {
		return err
	}
	s.sources[name] = &next
	return nil
}

// NewBlob starts a blob of at most maxBytes (zero: no bound).
func (s *Store) NewBlob(maxBytes int64) (*BlobWriter, error) {
	return newBlobWriter(s.blobDir, maxBytes)
}

// Commit ends a blob and makes it the source's newest version, unless its
// content is the newest version's: then it is discarded and created is
// false. Either way the origin is recorded. Retention and GC run after a new
// version.
func (s *Store) Commit(name string, w *BlobWriter, revision string, o Origin) (v Version, created bool, err error) {
	defer w.Abort()
	if err := w.finish(); err != nil {
		return Version{}, false, err
	}
	digest, size := w.Digest(), w.Size()
	hex, _ := DigestHex(digest)
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[name]
	if !ok {
		return Version{}, false, fmt.Errorf("%w %q", ErrUnknownSource, name)
	}
	next := src.clone()
	next.Origin = o
	if latest := next.Latest(); latest != nil && latest.Digest == digest {
		if src.Origin != o {
			if err := s.persist(&next); err != nil {
				return Version{}, false, err
			}
			s.sources[name] = &next
		}
		return *latest, false, nil
	}
	if err := os.Rename(w.file.Name(), filepath.Join(s.blobDir, hex)); err != nil {
		return Version{}, false, fmt.Errorf("store blob %s: %w", digest, err)
	}
	w.done = true
	if err := syncDir(s.blobDir); err != nil {
		return Version{}, false, err
	}
	now := s.opts.Clock.Now().UTC().Truncate(time.Second)
	v = Version{ID: NewVersionID(now, digest, next.Latest()), Digest: digest, Size: size, Created: now, Revision: revision}
	next.Versions = append(next.Versions, v)
	s.retain(&next)
	if err := s.persist(&next); err != nil {
		return Version{}, false, err
	}
	s.sources[name] = &next
	return v, true, s.collectBlobs()
}

// UnknownVersionsError lists the ids SetPins did not find.
type UnknownVersionsError struct{ IDs []string }

func (e *UnknownVersionsError) Error() string {
	shown := e.IDs
	if len(shown) > 5 {
		shown = shown[:5]
	}
	return fmt.Sprintf("%d unknown version(s): %s", len(e.IDs), strings.Join(shown, ", "))
}

// Is makes errors.Is(err, ErrUnknownVersion) true.
func (e *UnknownVersionsError) Is(target error) bool { return target == ErrUnknownVersion }

// SetPins replaces a source's pins. Every id must be a current version.
// Versions no longer pinned and beyond the newest Keep are collected.
func (s *Store) SetPins(name string, ids []string) (Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[name]
	if !ok {
		return Source{}, fmt.Errorf("%w %q", ErrUnknownSource, name)
	}
	pins := slices.Compact(slices.Sorted(slices.Values(ids)))
	var unknown []string
	for _, id := range pins {
		if src.find(id) < 0 {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return Source{}, &UnknownVersionsError{IDs: unknown}
	}
	next := src.clone()
	next.Pins = pins
	if next.Pins == nil {
		next.Pins = []string{}
	}
	s.retain(&next)
	if err := s.persist(&next); err != nil {
		return Source{}, err
	}
	s.sources[name] = &next
	return next.clone(), s.collectBlobs()
}
