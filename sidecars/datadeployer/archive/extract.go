package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// ErrParentNotDir: an entry lies below a name the archive made a regular file.
var ErrParentNotDir = errors.New("a parent is a regular file")

// The modes extracted entries get, whatever the archive says: no setuid,
// setgid or sticky bits, no group or world write, and readable by every
// container of the pod (they run as other users).
const (
	DirMode  os.FileMode = 0o755
	FileMode os.FileMode = 0o644
	ExecMode os.FileMode = 0o755
)

// MaskMode is the mode a regular file with tar mode m gets: ExecMode when
// any execute bit is set, FileMode otherwise.
func MaskMode(m int64) os.FileMode {
	if m&0o111 != 0 {
		return ExecMode
	}
	return FileMode
}

// Stats counts what an extraction created.
type Stats struct {
	Files int
	Dirs  int
	// Bytes is the sum of the regular files' sizes.
	Bytes int64
}

type kind uint8

const (
	implicitDir kind = iota + 1
	explicitDir
	regularFile
)

type extractor struct {
	root    *os.Root
	lim     Limits
	seen    map[string]kind
	entries int
	stats   Stats
}

// Extract reads the tar stream r and creates its entries inside root, which
// should be empty. It stops at the first entry it refuses and returns an
// *EntryError saying which and why; what it created so far stays, for the
// caller to remove with the rest of the root. Directories missing from the
// archive are created for the files below them. A pax global header (git
// archive writes one) carries no file and is skipped.
func Extract(ctx context.Context, root *os.Root, r io.Reader, lim Limits) (Stats, error) {
	if err := lim.Validate(); err != nil {
		return Stats{}, err
	}
	x := extractor{root: root, lim: lim, seen: map[string]kind{}}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return x.stats, fmt.Errorf("extract: %w", context.Cause(ctx))
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return x.stats, nil
		}
		if err != nil {
			return x.stats, fmt.Errorf("read archive after %d entries: %w", x.entries, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.stats, err
		}
	}
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	fail := func(err error) error { return &EntryError{Name: hdr.Name, Err: err} }
	name, _, err := CleanName(hdr.Name, x.lim.MaxDepth)
	if err != nil {
		return fail(err)
	}
	isDir := false
	switch hdr.Typeflag {
	case tar.TypeDir:
		isDir = true
	case tar.TypeReg, '\x00': // '\x00' is the old-style regular file (TypeRegA)
	default:
		return fail(fmt.Errorf("%w (it is %s)", ErrUnsupportedType, typeName(hdr.Typeflag)))
	}
	x.entries++
	if x.entries > x.lim.MaxEntries {
		return fail(fmt.Errorf("%w: more than %d", ErrTooManyEntries, x.lim.MaxEntries))
	}
	if name == "." {
		if !isDir {
			return fail(fmt.Errorf("%w: a regular file named like the root", ErrUnsafeName))
		}
		if x.seen["."] != 0 {
			return fail(ErrDuplicate)
		}
		x.seen["."] = explicitDir
		return nil
	}
	switch prev := x.seen[name]; {
	case prev == explicitDir || prev == regularFile:
		return fail(ErrDuplicate)
	case prev == implicitDir && !isDir:
		return fail(fmt.Errorf("%w: a directory of that name already holds other entries", ErrDuplicate))
	}
	if err := x.parents(name); err != nil {
		return fail(err)
	}
	if isDir {
		if x.seen[name] == 0 {
			if err := x.mkdir(name); err != nil {
				return fail(err)
			}
		}
		x.seen[name] = explicitDir
		return nil
	}
	if hdr.Size > x.lim.MaxBytes-x.stats.Bytes {
		return fail(fmt.Errorf("%w: the files add up to more than %d bytes", ErrTooManyBytes, x.lim.MaxBytes))
	}
	if err := x.writeFile(name, MaskMode(hdr.Mode), hdr.Size, body); err != nil {
		return fail(err)
	}
	x.seen[name] = regularFile
	x.stats.Files++
	x.stats.Bytes += hdr.Size
	return nil
}

// parents creates the directories above name that do not exist yet.
func (x *extractor) parents(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] != '/' {
			continue
		}
		dir := name[:i]
		switch x.seen[dir] {
		case regularFile:
			return fmt.Errorf("%w: %q", ErrParentNotDir, dir)
		case 0:
			if err := x.mkdir(dir); err != nil {
				return err
			}
			x.seen[dir] = implicitDir
		}
	}
	return nil
}

func (x *extractor) mkdir(name string) error {
	if err := x.root.Mkdir(name, DirMode); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	// The umask may have cleared bits that other containers need; fix the
	// mode through a descriptor, which cannot be redirected by a symlink.
	d, err := x.root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open created directory: %w", err)
	}
	err = d.Chmod(DirMode)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set directory mode: %w", err)
	}
	x.stats.Dirs++
	return nil
}

func (x *extractor) writeFile(name string, mode os.FileMode, size int64, body io.Reader) error {
	// O_EXCL: never write through something that appeared at this name.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, mode)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	_, err = io.CopyN(f, body, size)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar:
		return "a character device"
	case tar.TypeBlock:
		return "a block device"
	case tar.TypeFifo:
		return "a FIFO"
	case tar.TypeCont:
		return "a contiguous file"
	case tar.TypeGNUSparse:
		return "a sparse file"
	}
	return fmt.Sprintf("type %q", string(rune(t)))
}

// VerifyTree walks root and fails when it holds anything other than
// directories and regular files, or more entries than lim allows. Run it
// after Extract: a process sharing the volume may have planted a symlink,
// and such a tree must not go live.
func VerifyTree(root *os.Root, lim Limits) error {
	n := 0
	err := fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		n++
		if n > lim.MaxEntries {
			return fmt.Errorf("%w: more than %d", ErrTooManyEntries, lim.MaxEntries)
		}
		if t := d.Type(); t != 0 && !t.IsDir() {
			return fmt.Errorf("%w: %q is %s", ErrNotATree, shorten(name), modeName(t))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify extracted tree: %w", err)
	}
	return nil
}

func modeName(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeDevice != 0:
		return "a device"
	case t&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case t&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

func shorten(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
