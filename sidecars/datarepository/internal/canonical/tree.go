package canonical

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// Modes of the canonical tar.
const (
	DirMode  = 0o755
	FileMode = 0o644
	ExecMode = 0o755
)

// Limits bound what one version may hold, so that a hostile or broken
// source (an archive bomb, a huge repository) fails cleanly.
type Limits struct {
	// MaxBytes bounds the sum of the file sizes. Zero means no bound.
	MaxBytes int64
	// MaxEntries bounds the number of files and directories. Zero means
	// DefaultMaxEntries.
	MaxEntries int
}

// DefaultMaxEntries is the entry bound when Limits.MaxEntries is zero.
const DefaultMaxEntries = 1_000_000

// Entry is one file or directory of a tree. Ref says where its content is,
// in the caller's terms (a git object id, a file path, a span of a spool).
type Entry[R any] struct {
	Path string
	Dir  bool
	Exec bool
	Size int64
	Ref  R
}

// Tree collects the entries of a version and writes them as a canonical tar.
type Tree[R any] struct {
	limits  Limits
	entries map[string]*Entry[R]
	bytes   int64
}

// NewTree returns an empty tree bounded by limits.
func NewTree[R any](limits Limits) *Tree[R] {
	if limits.MaxEntries == 0 {
		limits.MaxEntries = DefaultMaxEntries
	}
	return &Tree[R]{limits: limits, entries: map[string]*Entry[R]{}}
}

// Len is the number of entries, implicit parent directories included.
func (t *Tree[R]) Len() int { return len(t.entries) }

// Bytes is the sum of the file sizes.
func (t *Tree[R]) Bytes() int64 { return t.bytes }

// AddDir adds a directory by its raw name, which is checked with CleanPath.
// The root ("." or "./") is accepted and ignored. Adding a directory twice
// is fine.
func (t *Tree[R]) AddDir(name string) error {
	p, err := CleanPath(name)
	if errors.Is(err, ErrRoot) {
		return nil
	}
	if err != nil {
		return err
	}
	return t.add(&Entry[R]{Path: p, Dir: true})
}

// AddFile adds a regular file by its raw name, which is checked with
// CleanPath. A name may be added only once.
func (t *Tree[R]) AddFile(name string, size int64, exec bool, ref R) error {
	p, err := CleanPath(name)
	if err != nil {
		if errors.Is(err, ErrRoot) {
			return fmt.Errorf("%s: a file cannot be the root", quote(name))
		}
		return err
	}
	if size < 0 {
		return fmt.Errorf("%s: negative size", quote(name))
	}
	if t.limits.MaxBytes > 0 && size > t.limits.MaxBytes-t.bytes {
		return fmt.Errorf("%s: the version would be larger than %d bytes", quote(name), t.limits.MaxBytes)
	}
	if err := t.add(&Entry[R]{Path: p, Size: size, Exec: exec, Ref: ref}); err != nil {
		return err
	}
	t.bytes += size
	return nil
}

// add inserts e and its missing parent directories.
func (t *Tree[R]) add(e *Entry[R]) error {
	if old, ok := t.entries[e.Path]; ok {
		if old.Dir && e.Dir {
			return nil
		}
		if old.Dir != e.Dir {
			return fmt.Errorf("%s is both a file and a directory", quote(e.Path))
		}
		return fmt.Errorf("%s appears twice", quote(e.Path))
	}
	// Parents first, so a file under a file is caught before e is added.
	if dir := path.Dir(e.Path); dir != "." {
		if parent, ok := t.entries[dir]; ok && !parent.Dir {
			return fmt.Errorf("%s lies under the file %s", quote(e.Path), quote(dir))
		}
		if _, ok := t.entries[dir]; !ok {
			if err := t.add(&Entry[R]{Path: dir, Dir: true}); err != nil {
				return err
			}
		}
	}
	if len(t.entries) >= t.limits.MaxEntries {
		return fmt.Errorf("more than %d entries", t.limits.MaxEntries)
	}
	t.entries[e.Path] = e
	return nil
}

// Sorted returns the entries in canonical order: by path, byte order. A
// directory comes before everything under it, since its path is a prefix.
func (t *Tree[R]) Sorted() []*Entry[R] {
	out := make([]*Entry[R], 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *Entry[R]) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Opener returns the content of a file entry. Write reads exactly Size
// bytes from it and then checks that nothing follows, so a file that
// changed while it was read is an error rather than a wrong version.
type Opener[R any] func(e *Entry[R]) (io.Reader, error)

// ErrChanged reports a file whose size differs from the one listed.
var ErrChanged = errors.New("content does not match its listed size; did it change while being read?")

// Write writes the canonical tar of the tree to w. The opener is called once
// per file, in canonical order. A reader it returns that is also an
// io.Closer is closed when its content has been copied.
func (t *Tree[R]) Write(w io.Writer, open Opener[R]) error {
	tw := tar.NewWriter(w)
	for _, e := range t.Sorted() {
		if err := writeEntry(tw, e, open); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish tar: %w", err)
	}
	return nil
}

func writeEntry[R any](tw *tar.Writer, e *Entry[R], open Opener[R]) error {
	if e.Dir {
		if err := tw.WriteHeader(Header(e.Path, true, false, 0)); err != nil {
			return fmt.Errorf("tar header of %s: %w", quote(e.Path), err)
		}
		return nil
	}
	r, err := open(e)
	if err != nil {
		return fmt.Errorf("open %s: %w", quote(e.Path), err)
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	if err := tw.WriteHeader(Header(e.Path, false, e.Exec, e.Size)); err != nil {
		return fmt.Errorf("tar header of %s: %w", quote(e.Path), err)
	}
	n, err := io.CopyN(tw, r, e.Size)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %d of %d bytes: %w", quote(e.Path), n, e.Size, ErrChanged)
		}
		return fmt.Errorf("copy %s: %w", quote(e.Path), err)
	}
	if extra, _ := r.Read(make([]byte, 1)); extra > 0 {
		return fmt.Errorf("%s: more than %d bytes: %w", quote(e.Path), e.Size, ErrChanged)
	}
	return nil
}

// Header is the canonical tar header of an entry at canonical path p.
func Header(p string, dir, exec bool, size int64) *tar.Header {
	h := &tar.Header{
		Name:     p,
		Typeflag: tar.TypeReg,
		Mode:     FileMode,
		Size:     size,
		ModTime:  time.Unix(0, 0),
	}
	switch {
	case dir:
		h.Name, h.Typeflag, h.Mode, h.Size = p+"/", tar.TypeDir, DirMode, 0
	case exec:
		h.Mode = ExecMode
	}
	return h
}
