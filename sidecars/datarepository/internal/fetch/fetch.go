package fetch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

// Fetcher checks one source.
type Fetcher interface {
	// Fetch compares the source with prev, what the last successful check
	// saw. When the source is unchanged it returns a Result with Unchanged
	// set; otherwise a Result whose Write produces the new content. The
	// caller always calls Result.Close.
	Fetch(ctx context.Context, prev store.Origin) (*Result, error)
}

// Result is the outcome of one check.
type Result struct {
	// Unchanged is true when the source is as prev said.
	Unchanged bool
	// Origin is what this check saw, to record once the content is stored.
	Origin store.Origin
	// Revision names the content at the source: a commit, an ETag, a digest.
	Revision string
	// Write writes the canonical tar of the content. Nil when Unchanged.
	Write func(w io.Writer) error
	// Closers are run by Close, last first.
	closers []func()
}

// Close releases what the result holds (temporary files, processes).
func (r *Result) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

func (r *Result) onClose(f func()) { r.closers = append(r.closers, f) }

// Credentials for one source, read from files.
type Credentials struct {
	// Username and Password make HTTP Basic authentication.
	Username, Password string
	// Token makes an HTTP Bearer authorization.
	Token string
	// SSHKeyFile and KnownHostsFile are paths for ssh transports.
	SSHKeyFile, KnownHostsFile string
}

// Credential file names under DIR/SOURCE/, the keys of Kubernetes'
// basic-auth and ssh-auth Secret types plus "token" and "known_hosts".
const (
	FileUsername   = "username"
	FilePassword   = "password"
	FileToken      = "token"
	FileSSHKey     = "ssh-privatekey"
	FileKnownHosts = "known_hosts"
)

// maxCredentialBytes bounds one credential file.
const maxCredentialBytes = 64 << 10

// LoadCredentials reads DIR/SOURCE/*. An empty dir, or no directory for
// the source, means no credentials.
func LoadCredentials(dir, source string) (Credentials, error) {
	var c Credentials
	if dir == "" {
		return c, nil
	}
	base := filepath.Join(dir, source)
	read := func(name string, into *string) error {
		data, err := readSmall(filepath.Join(base, name))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("credentials of source %s: %s: %w", source, name, err)
		}
		*into = strings.TrimRight(string(data), "\r\n")
		return nil
	}
	for name, into := range map[string]*string{FileUsername: &c.Username, FilePassword: &c.Password, FileToken: &c.Token} {
		if err := read(name, into); err != nil {
			return Credentials{}, err
		}
	}
	for name, into := range map[string]*string{FileSSHKey: &c.SSHKeyFile, FileKnownHosts: &c.KnownHostsFile} {
		p := filepath.Join(base, name)
		if _, err := os.Stat(p); err == nil {
			*into = p
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return Credentials{}, fmt.Errorf("credentials of source %s: %s and %s go together", source, FileUsername, FilePassword)
	}
	for _, v := range []string{c.Username, c.Password, c.Token} {
		if strings.ContainsAny(v, "\r\n\x00") {
			return Credentials{}, fmt.Errorf("credentials of source %s: a value contains a line break or NUL", source)
		}
	}
	return c, nil
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCredentialBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxCredentialBytes)
	}
	return data, nil
}

// Authorization is the value of the Authorization header the credentials
// make, or "" for none. A token wins over a username and password.
func (c Credentials) Authorization() string {
	switch {
	case c.Token != "":
		return "Bearer " + c.Token
	case c.Username != "":
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
	}
	return ""
}

// Redact replaces every secret value in s.
func (c Credentials) Redact(s string) string {
	for _, secret := range []string{c.Password, c.Token, c.Authorization()} {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "REDACTED")
		}
	}
	if c.Username != "" {
		basic := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
		s = strings.ReplaceAll(s, basic, "REDACTED")
	}
	return s
}
