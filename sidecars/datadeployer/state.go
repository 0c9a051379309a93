package datadeployer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// versionRecord is one version a deployment holds.
type versionRecord struct {
	Source  string `json:"source,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest"`
	// Since is when the version went live (for a previous version: when it
	// last did).
	Since time.Time `json:"since,omitzero"`
}

func (v *versionRecord) String() string {
	if v == nil {
		return ""
	}
	return v.Source + "/" + v.Version + "/" + v.Digest
}

// savedState is .autocrane/state.json. The symlinks are the truth about
// what is live; the file adds what they cannot say: version ids, sources,
// the previous version.
type savedState struct {
	Deployments map[string]savedDeployment `json:"deployments"`
}

type savedDeployment struct {
	Live     *versionRecord `json:"live,omitempty"`
	Previous *versionRecord `json:"previous,omitempty"`
}

// maxStateFile bounds state.json: 64 deployments of a few hundred bytes.
const maxStateFile = 1 << 20

func (s *store) readState() (savedState, error) {
	f, err := s.root.OpenFile(stateFile, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return savedState{}, nil
	}
	if err != nil {
		return savedState{}, fmt.Errorf("read %s: %w", stateFile, err)
	}
	defer f.Close()
	var st savedState
	dec := json.NewDecoder(&limitedReader{r: f, left: maxStateFile})
	if err := dec.Decode(&st); err != nil {
		return savedState{}, fmt.Errorf("parse %s: %w", stateFile, err)
	}
	return st, nil
}

// writeState replaces state.json atomically: a temp file, synced, renamed.
func (s *store) writeState(st savedState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp := stateFile + ".tmp"
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, stateFile)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

type limitedReader struct {
	r    interface{ Read([]byte) (int, error) }
	left int
}

func (l *limitedReader) Read(b []byte) (int, error) {
	if l.left <= 0 {
		return 0, fmt.Errorf("%s is larger than %d bytes", stateFile, maxStateFile)
	}
	if len(b) > l.left {
		b = b[:l.left]
	}
	n, err := l.r.Read(b)
	l.left -= n
	return n, err
}
