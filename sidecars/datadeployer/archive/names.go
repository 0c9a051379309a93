package archive

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Limits bound what one archive may create.
type Limits struct {
	// MaxBytes caps the sum of the regular files' sizes.
	MaxBytes int64
	// MaxEntries caps the number of entries (files and directories).
	MaxEntries int
	// MaxDepth caps the number of path components of a name.
	MaxDepth int
}

// Defaults of Limits.
const (
	DefaultMaxBytes   int64 = 4 << 30
	DefaultMaxEntries       = 100_000
	DefaultMaxDepth         = 64
)

// DefaultLimits returns the default caps: 4 GiB, 100,000 entries, depth 64.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, MaxEntries: DefaultMaxEntries, MaxDepth: DefaultMaxDepth}
}

// Validate reports caps that make no sense.
func (l Limits) Validate() error {
	if l.MaxBytes < 0 || l.MaxEntries < 1 || l.MaxDepth < 1 {
		return fmt.Errorf("archive limits must be positive (bytes %d, entries %d, depth %d)", l.MaxBytes, l.MaxEntries, l.MaxDepth)
	}
	return nil
}

// The reasons an archive is refused; match them with errors.Is.
var (
	ErrUnsafeName      = errors.New("unsafe name")
	ErrUnsupportedType = errors.New("unsupported entry type: only directories and regular files are allowed")
	ErrDuplicate       = errors.New("duplicate entry")
	ErrTooManyBytes    = errors.New("too many bytes")
	ErrTooManyEntries  = errors.New("too many entries")
	ErrTooDeep         = errors.New("too deep")
	ErrNotATree        = errors.New("extracted tree holds something other than directories and regular files")
)

// EntryError is an error about one entry of an archive.
type EntryError struct {
	// Name is the entry's name as the archive spells it, quoted when shown.
	Name string
	Err  error
}

func (e *EntryError) Error() string {
	name := e.Name
	if len(name) > 128 {
		name = name[:128] + "..."
	}
	return fmt.Sprintf("archive entry %q: %v", name, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Bounds of names, below the kernel's own (PATH_MAX 4096, NAME_MAX 255),
// so a name is refused with a clear message rather than ENAMETOOLONG.
const (
	maxNameBytes      = 4000
	maxComponentBytes = 255
)

// CleanName checks an entry name and returns it without the "./" prefix
// and the trailing "/" that tar writers add, with its depth (number of
// components). The archive's root itself ("." or "./") comes back as "."
// with depth 0. Refused: empty names, NUL bytes, absolute names, ".."
// components, and names that are not already clean ("a//b", "a/./b"), so
// that every path has one spelling and duplicates are caught.
func CleanName(name string, maxDepth int) (string, int, error) {
	switch {
	case name == "":
		return "", 0, fmt.Errorf("%w: empty", ErrUnsafeName)
	case strings.IndexByte(name, 0) >= 0:
		return "", 0, fmt.Errorf("%w: contains a NUL byte", ErrUnsafeName)
	case len(name) > maxNameBytes:
		return "", 0, fmt.Errorf("%w: longer than %d bytes", ErrUnsafeName, maxNameBytes)
	case strings.HasPrefix(name, "/"):
		return "", 0, fmt.Errorf("%w: absolute", ErrUnsafeName)
	}
	n := strings.TrimPrefix(name, "./")
	if strings.HasPrefix(n, "/") {
		return "", 0, fmt.Errorf("%w: not clean (empty or \".\" components)", ErrUnsafeName)
	}
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return ".", 0, nil
	}
	parts := strings.Split(n, "/")
	for _, p := range parts {
		switch {
		case p == "..":
			return "", 0, fmt.Errorf("%w: has a \"..\" component", ErrUnsafeName)
		case len(p) > maxComponentBytes:
			return "", 0, fmt.Errorf("%w: a component is longer than %d bytes", ErrUnsafeName, maxComponentBytes)
		}
	}
	if path.Clean(n) != n {
		return "", 0, fmt.Errorf("%w: not clean (empty or \".\" components)", ErrUnsafeName)
	}
	if len(parts) > maxDepth {
		return "", 0, fmt.Errorf("%w: %d components, more than %d", ErrTooDeep, len(parts), maxDepth)
	}
	return n, len(parts), nil
}
