package fetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/canonical"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

// fetchedRef is where a fetch puts the commit it brought.
const fetchedRef = "refs/autocrane/fetched"

// Git follows a branch or tag of a git repository with shallow fetches into
// a bare repository of its own.
type Git struct {
	// Location is the declared LOCATION (URL#ref), recorded in the origin.
	Location string
	// Remote is Location, parsed by ParseGitLocation.
	Remote GitRemote
	// AllowInsecure lets this source use file://, git:// and http://.
	AllowInsecure bool
	// RepoDir is the source's bare repository, created when missing.
	RepoDir string
	// HomeDir is an empty directory that git gets as $HOME.
	HomeDir string
	// GitPath is the git binary. Empty means "git" from $PATH.
	GitPath string
	// Credentials returns the source's credentials, read at each check.
	Credentials func() (Credentials, error)
	// Limits bound the version.
	Limits canonical.Limits
}

// Fetch asks the remote for the ref's object id (git ls-remote) and fetches
// only when it differs from the one recorded in prev.
func (g *Git) Fetch(ctx context.Context, prev store.Origin) (*Result, error) {
	if g.Remote.Insecure() && !g.AllowInsecure {
		return nil, fmt.Errorf("git transport %s:// is plaintext or local; allow it for this source with --allow-insecure", g.Remote.Scheme)
	}
	creds := Credentials{}
	if g.Credentials != nil {
		c, err := g.Credentials()
		if err != nil {
			return nil, err
		}
		creds = c
	}
	gitPath := g.GitPath
	if gitPath == "" {
		gitPath = "git"
	}
	if err := os.MkdirAll(g.HomeDir, 0o700); err != nil {
		return nil, fmt.Errorf("create git home: %w", err)
	}
	cmd := newGitCmd(gitPath, g.RepoDir, g.HomeDir, g.Remote, g.AllowInsecure, creds)
	if err := g.ensureRepo(ctx, cmd); err != nil {
		return nil, err
	}
	remoteID, ref, err := g.lsRemote(ctx, cmd)
	if err != nil {
		return nil, err
	}
	origin := store.Origin{Location: g.Location, Revision: remoteID}
	if prev.Location == g.Location && prev.Revision == remoteID {
		return &Result{Unchanged: true, Origin: origin, Revision: remoteID}, nil
	}
	if _, err := cmd.run(ctx, 64<<10, "fetch", "--quiet", "--depth", "1", "--no-tags", "--no-recurse-submodules",
		"--no-auto-maintenance", "--no-write-fetch-head", "--", g.Remote.URL, "+"+ref+":"+fetchedRef); err != nil {
		return nil, err
	}
	out, err := cmd.run(ctx, 1024, "rev-parse", "--verify", "--end-of-options", fetchedRef+"^{commit}")
	if err != nil {
		return nil, err
	}
	commit := strings.TrimSpace(out)
	if _, err := cmd.run(ctx, 64<<10, "gc", "--auto", "--quiet"); err != nil {
		return nil, err
	}
	tree, err := g.listTree(ctx, cmd, commit)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	return &Result{
		Origin:   origin,
		Revision: commit,
		Write:    func(w io.Writer) error { return writeGitTree(ctx, cmd, tree, w) },
	}, nil
}

func (g *Git) ensureRepo(ctx context.Context, cmd *gitCmd) error {
	if _, err := os.Stat(filepath.Join(g.RepoDir, "HEAD")); err == nil {
		return nil
	}
	if err := os.MkdirAll(g.RepoDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", g.RepoDir, err)
	}
	// --template= copies no sample hooks or other templates.
	_, err := cmd.run(ctx, 64<<10, "init", "--bare", "--quiet", "--template=")
	return err
}

// lsRemote returns the object id the remote has for the ref, and the full
// ref to fetch. A branch wins over a tag of the same name. For an annotated
// tag the id is the tag object's: it changes when the tag moves.
func (g *Git) lsRemote(ctx context.Context, cmd *gitCmd) (string, string, error) {
	var wanted []string
	switch ref := g.Remote.Ref; {
	case ref == "":
		wanted = []string{"HEAD"}
	case strings.HasPrefix(ref, "refs/"):
		wanted = []string{ref}
	default:
		wanted = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	out, err := cmd.run(ctx, 1<<20, append([]string{"ls-remote", "--", g.Remote.URL}, wanted...)...)
	if err != nil {
		return "", "", err
	}
	found := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if id, name, ok := strings.Cut(line, "\t"); ok {
			found[name] = id
		}
	}
	for _, name := range wanted {
		if id, ok := found[name]; ok {
			return id, name, nil
		}
	}
	if g.Remote.Ref == "" {
		return "", "", errors.New("git ls-remote: the remote has no HEAD")
	}
	return "", "", fmt.Errorf("git ls-remote: no branch or tag %q", g.Remote.Ref)
}

// listTree reads the commit's tree: directories and regular files, by
// object id. Symbolic links are refused. A submodule becomes an empty
// directory, as in a clone without --recurse-submodules.
func (g *Git) listTree(ctx context.Context, cmd *gitCmd, commit string) (*canonical.Tree[string], error) {
	c := cmd.command(ctx, "ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit)
	stderr := &capBuffer{max: maxGitStderr}
	c.Stderr = stderr
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("git ls-tree: %w", err)
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("git ls-tree: %w", err)
	}
	tree := canonical.NewTree[string](g.Limits)
	parseErr := parseLsTree(bufio.NewReaderSize(stdout, 64<<10), tree)
	if parseErr != nil {
		_ = c.Cancel()
	}
	waitErr := c.Wait()
	if parseErr != nil {
		return nil, parseErr
	}
	if waitErr != nil {
		return nil, cmd.error(ctx, "ls-tree", waitErr, stderr)
	}
	return tree, nil
}

func parseLsTree(r *bufio.Reader, tree *canonical.Tree[string]) error {
	for {
		rec, err := r.ReadString(0)
		if errors.Is(err, io.EOF) && rec == "" {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read git ls-tree: %w", err)
		}
		meta, name, ok := strings.Cut(strings.TrimSuffix(rec, "\x00"), "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 4 {
			return fmt.Errorf("unexpected git ls-tree record %q", cut(rec))
		}
		mode, id, sizeText := fields[0], fields[2], fields[3]
		switch mode {
		case "040000", "160000":
			err = tree.AddDir(name)
		case "100644", "100664", "100755":
			size, perr := strconv.ParseInt(sizeText, 10, 64)
			if perr != nil {
				return fmt.Errorf("git ls-tree: size %q of %q", cut(sizeText), cut(name))
			}
			err = tree.AddFile(name, size, mode == "100755", id)
		case "120000":
			return fmt.Errorf("%q is a symbolic link; a source may contain only directories and regular files", cut(name))
		default:
			return fmt.Errorf("%q has git mode %s; a source may contain only directories and regular files", cut(name), cut(mode))
		}
		if err != nil {
			return err
		}
	}
}

// writeGitTree writes the tree's canonical tar, reading blob contents in
// canonical order from one "git cat-file --batch".
func writeGitTree(ctx context.Context, cmd *gitCmd, tree *canonical.Tree[string], w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := cmd.command(ctx, "cat-file", "--batch")
	stderr := &capBuffer{max: maxGitStderr}
	c.Stderr = stderr
	stdin, err := c.StdinPipe()
	if err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("git cat-file: %w", err)
	}
	br := bufio.NewReaderSize(stdout, 256<<10)
	pending := false
	open := func(e *canonical.Entry[string]) (io.Reader, error) {
		if pending {
			// Each object's content is followed by a newline.
			if b, err := br.ReadByte(); err != nil || b != '\n' {
				return nil, fmt.Errorf("git cat-file: unexpected output after an object")
			}
		}
		if _, err := io.WriteString(stdin, e.Ref+"\n"); err != nil {
			return nil, fmt.Errorf("git cat-file: %w", err)
		}
		header, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git cat-file: %w", err)
		}
		want := fmt.Sprintf("%s blob %d\n", e.Ref, e.Size)
		if header != want {
			return nil, fmt.Errorf("git cat-file: got %q, want %q", cut(header), want)
		}
		pending = true
		return io.LimitReader(br, e.Size), nil
	}
	writeErr := tree.Write(w, open)
	stdin.Close()
	if writeErr != nil {
		cancel()
		_ = c.Wait()
		return writeErr
	}
	if err := c.Wait(); err != nil {
		return cmd.error(ctx, "cat-file", err, stderr)
	}
	return nil
}
