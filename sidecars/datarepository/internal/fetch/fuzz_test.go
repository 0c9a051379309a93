package fetch

import (
	"net/url"
	"strings"
	"testing"
)

func FuzzParseGitLocation(f *testing.F) {
	for _, s := range []string{
		"https://h/r.git#main", "ssh://git@h:22/r", "git@h:r.git", "file:///srv/r", "ext::sh", "-x", "h::x",
		"https://u:p@h/r", "ssh://-o/r", "https://h/r#a..b", "https://h/r#refs/tags/v1", "[::1]:r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		r, err := ParseGitLocation(loc)
		if err != nil {
			raw, _, _ := strings.Cut(loc, "#")
			if u, perr := url.Parse(raw); perr == nil && u.User != nil {
				if _, hasPassword := u.User.Password(); hasPassword && strings.Contains(err.Error(), u.User.String()+"@") {
					t.Fatalf("error repeats a password: %v", err)
				}
			}
			return
		}
		if strings.HasPrefix(r.URL, "-") || transportHelper.MatchString(r.URL) {
			t.Fatalf("accepted %q as %+v", loc, r)
		}
		if strings.HasPrefix(r.Ref, "-") || strings.Contains(r.Ref, "..") {
			t.Fatalf("accepted ref %q", r.Ref)
		}
		switch r.Scheme {
		case "https", "ssh", "file", "git", "http":
		default:
			t.Fatalf("scheme %q", r.Scheme)
		}
		if strings.ContainsAny(r.URL, " \t\n\r\x00") {
			t.Fatalf("white space or control in %q", r.URL)
		}
	})
}
