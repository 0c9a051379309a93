package fetch

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/autocrane/autocrane/spec"
)

// GitRemote is a checked git source location.
type GitRemote struct {
	// URL is passed to git after "--".
	URL string
	// Scheme is https, ssh, file, git or http (scp-like user@host:path is ssh).
	Scheme string
	// Ref is the branch or tag to follow; empty means the remote's HEAD.
	Ref string
}

// Insecure reports whether the transport is plaintext or local, which a
// source may use only when allowed (--allow-insecure).
func (r GitRemote) Insecure() bool {
	return r.Scheme == "file" || r.Scheme == "git" || r.Scheme == "http"
}

var (
	// transportHelper matches git's "<transport>::<address>" syntax, which
	// runs a remote helper program (ext:: runs any command).
	transportHelper = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9+.-]*::`)
	// scpLike is [user@]host:path, which git runs over ssh.
	scpLike = regexp.MustCompile(`^(?:[A-Za-z0-9._~-]+@)?(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\]):[^:]`)
	refName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]*$`)
)

const gitForm = "accepted: https://host/repo, ssh://[user@]host/repo or user@host:repo, then optionally #branch-or-tag (file://, git:// and http:// only with --allow-insecure)"

// ParseGitLocation checks a git source's LOCATION: a URL and an optional
// #ref. It refuses transport helpers (ext::), option-like values, URLs
// that carry a password, and hosts or paths that ssh could take for an
// option. Errors never repeat a password.
func ParseGitLocation(loc string) (GitRemote, error) {
	shown := spec.RedactURL(loc)
	fail := func(why string) (GitRemote, error) {
		return GitRemote{}, fmt.Errorf("git location %q: %s; %s", cut(shown), why, gitForm)
	}
	if strings.ContainsFunc(loc, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fail("white space or control characters")
	}
	raw, ref, hasRef := strings.Cut(loc, "#")
	if hasRef {
		if err := checkRef(ref); err != nil {
			return fail(err.Error())
		}
	}
	switch {
	case raw == "":
		return fail("empty URL")
	case strings.HasPrefix(raw, "-"):
		return fail("must not start with '-' (git would read it as an option)")
	case transportHelper.MatchString(raw):
		return fail("transport helpers (such as ext::) are not allowed")
	}
	if strings.Contains(raw, "://") {
		return parseGitURL(raw, ref, fail)
	}
	if scpLike.MatchString(raw) {
		host, _, _ := strings.Cut(raw, ":")
		if _, h, ok := strings.Cut(host, "@"); ok {
			host = h
		}
		if strings.HasPrefix(host, "-") {
			return fail("host must not start with '-'")
		}
		return GitRemote{URL: raw, Scheme: "ssh", Ref: ref}, nil
	}
	return fail("not a URL (local paths need file://)")
}

func parseGitURL(raw, ref string, fail func(string) (GitRemote, error)) (GitRemote, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return fail("not a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "https", "http", "ssh", "git":
		if u.Hostname() == "" {
			return fail("must name a host")
		}
		if strings.HasPrefix(u.Hostname(), "-") || strings.HasPrefix(u.User.Username(), "-") {
			return fail("host and user must not start with '-'")
		}
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fail("file:// URLs name no host")
		}
		if !strings.HasPrefix(u.Path, "/") {
			return fail("file:// URLs need an absolute path")
		}
	default:
		return fail(fmt.Sprintf("scheme %q is not allowed", cut(scheme)))
	}
	if _, ok := u.User.Password(); ok {
		return fail("passwords in URLs are not allowed; put credentials in --credentials-dir")
	}
	return GitRemote{URL: raw, Scheme: scheme, Ref: ref}, nil
}

// checkRef accepts branch and tag names (or full refs/... names) in the
// common subset of git's rules, so that a ref is never an option or a
// revision expression.
func checkRef(ref string) error {
	switch {
	case ref == "":
		return fmt.Errorf("empty ref after '#'")
	case len(ref) > 255:
		return fmt.Errorf("ref longer than 255 bytes")
	case !refName.MatchString(ref):
		return fmt.Errorf("ref %q: letters, digits, '.', '_', '-' and '/' only, not starting with '-', '.' or '/'", cut(ref))
	case strings.Contains(ref, "..") || strings.Contains(ref, "//") || strings.Contains(ref, "/."),
		strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, "."), strings.HasSuffix(ref, ".lock"):
		return fmt.Errorf("ref %q is not a valid branch or tag name", cut(ref))
	}
	return nil
}

// cut bounds a value repeated in an error.
func cut(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
