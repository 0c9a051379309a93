package canonical

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds of one name. Linux allows 4096 bytes per path and 255 per
// component; a longer name could never be unpacked by the deployer.
const (
	MaxPathBytes      = 4096
	MaxComponentBytes = 255
)

// ErrRoot is returned by CleanPath for a name that is the root itself
// ("." or "./"), which archives often contain and which has no entry of its
// own in the canonical tar.
var ErrRoot = errors.New("the root directory")

// CleanPath checks a name from a source (a tar entry, a git tree path, a
// file under a directory) and returns its canonical form: relative, "/"
// separated, without a leading "./" or a trailing "/". It refuses absolute
// names, "." and ".." components inside the name, empty components, NUL and
// invalid UTF-8, so no name can point outside the version.
func CleanPath(name string) (string, error) {
	p := name
	for strings.HasPrefix(p, "./") {
		p = strings.TrimLeft(p[2:], "/")
	}
	p = strings.TrimSuffix(p, "/")
	switch {
	case p == "." || (p == "" && name != ""):
		return "", ErrRoot
	case p == "":
		return "", errors.New("empty name")
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("%s: absolute names are not allowed", quote(name))
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("%s: NUL in a name", quote(name))
	case !utf8.ValidString(p):
		return "", fmt.Errorf("%s: names must be valid UTF-8", quote(name))
	case len(p) > MaxPathBytes:
		return "", fmt.Errorf("%s: longer than %d bytes", quote(name), MaxPathBytes)
	}
	for part := range strings.SplitSeq(p, "/") {
		switch {
		case part == "":
			return "", fmt.Errorf("%s: empty path component", quote(name))
		case part == "." || part == "..":
			return "", fmt.Errorf("%s: %q components are not allowed", quote(name), part)
		case len(part) > MaxComponentBytes:
			return "", fmt.Errorf("%s: a component is longer than %d bytes", quote(name), MaxComponentBytes)
		}
	}
	return p, nil
}

// quote shows a name in an error, cut so that a huge name cannot make a
// huge message.
func quote(name string) string {
	const max = 200
	if len(name) > max {
		return fmt.Sprintf("%q... (%d bytes)", name[:max], len(name))
	}
	return fmt.Sprintf("%q", name)
}
