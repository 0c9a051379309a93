package canonical

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
)

// Span is where a file's content lies in a spool file.
type Span struct {
	Offset int64
	Length int64
}

// ReadTar reads an archive (an uncompressed tar stream; the caller
// decompresses), checks every entry, and copies the contents of regular
// files one after the other into spool. It returns the tree; write it with
// SpoolOpener(spool). Only directories and regular files are accepted:
// symbolic and hard links, devices and FIFOs are refused with an error that
// names the entry. PAX global headers (git archive writes one) are skipped.
func ReadTar(r io.Reader, spool *os.File, limits Limits) (*Tree[Span], error) {
	t := NewTree[Span](limits)
	tr := tar.NewReader(r)
	var offset int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeDir:
			if err := t.AddDir(h.Name); err != nil {
				return nil, fmt.Errorf("archive entry: %w", err)
			}
		case tar.TypeReg:
			if err := t.AddFile(h.Name, h.Size, h.Mode&0o111 != 0, Span{Offset: offset, Length: h.Size}); err != nil {
				return nil, fmt.Errorf("archive entry: %w", err)
			}
			n, err := io.Copy(spool, tr)
			if err != nil {
				return nil, fmt.Errorf("archive entry %s: %w", quote(h.Name), err)
			}
			if n != h.Size {
				return nil, fmt.Errorf("archive entry %s: %d of %d bytes", quote(h.Name), n, h.Size)
			}
			offset += n
		default:
			return nil, fmt.Errorf("archive entry %s is a %s; a source may contain only directories and regular files", quote(h.Name), typeName(h.Typeflag))
		}
	}
}

// SpoolOpener opens spans of spool, for Tree[Span].Write.
func SpoolOpener(spool io.ReaderAt) Opener[Span] {
	return func(e *Entry[Span]) (io.Reader, error) {
		return io.NewSectionReader(spool, e.Ref.Offset, e.Ref.Length), nil
	}
}

func typeName(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeGNUSparse:
		return "sparse file"
	}
	return fmt.Sprintf("entry of type %q", flag)
}
