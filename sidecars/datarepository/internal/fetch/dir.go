package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/canonical"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

// Dir follows a local directory. Its revision is the digest of its
// canonical tar: a check reads every file and hashes, and only a changed
// digest makes the content be written.
type Dir struct {
	// Path is the declared location, a clean absolute path. It may itself
	// be a symbolic link; nothing under it may.
	Path string
	// Limits bound the version.
	Limits canonical.Limits
}

// Fetch walks the directory and hashes its canonical tar.
func (d *Dir) Fetch(ctx context.Context, prev store.Origin) (*Result, error) {
	root, err := filepath.EvalSymlinks(d.Path)
	if err != nil {
		return nil, fmt.Errorf("dir %s: %w", d.Path, err)
	}
	tree, err := d.walk(ctx, root)
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	if err := tree.Write(sum, d.opener(ctx)); err != nil {
		return nil, fmt.Errorf("dir %s: %w", d.Path, err)
	}
	digest := "sha256:" + hex.EncodeToString(sum.Sum(nil))
	origin := store.Origin{Location: d.Path, Revision: digest}
	if prev.Location == d.Path && prev.Revision == digest {
		return &Result{Unchanged: true, Origin: origin, Revision: digest}, nil
	}
	return &Result{
		Origin:   origin,
		Revision: digest,
		Write: func(w io.Writer) error {
			// Walk again: what is written is what is there now.
			tree, err := d.walk(ctx, root)
			if err != nil {
				return err
			}
			if err := tree.Write(w, d.opener(ctx)); err != nil {
				return fmt.Errorf("dir %s: %w", d.Path, err)
			}
			return nil
		},
	}, nil
}

func (d *Dir) walk(ctx context.Context, root string) (*canonical.Tree[string], error) {
	tree := canonical.NewTree[string](d.Limits)
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			if !e.IsDir() {
				return errors.New("not a directory")
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := e.Type(); {
		case t.IsDir():
			return tree.AddDir(rel)
		case t.IsRegular():
			fi, err := e.Info()
			if err != nil {
				return err
			}
			return tree.AddFile(rel, fi.Size(), fi.Mode()&0o111 != 0, p)
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%q is a symbolic link; a source may contain only directories and regular files", cut(rel))
		default:
			return fmt.Errorf("%q is a %s; a source may contain only directories and regular files", cut(rel), t.Type())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("dir %s: %w", d.Path, err)
	}
	return tree, nil
}

// opener opens a listed file and checks it is still a regular file.
func (d *Dir) opener(ctx context.Context) canonical.Opener[string] {
	return func(e *canonical.Entry[string]) (io.Reader, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(e.Ref)
		if err != nil {
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("no longer a regular file: %w", canonical.ErrChanged)
		}
		return f, nil
	}
}
