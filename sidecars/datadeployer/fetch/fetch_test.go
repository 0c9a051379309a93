package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autocrane/autocrane/sidecars/datadeployer/repotest"
)

func staging(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func blob(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestFetchVerifies(t *testing.T) {
	srv := repotest.New(t)
	content := blob(300_000)
	digest := srv.Add(content)
	root, dir := staging(t)
	var seen int64
	c := &Client{BaseURL: srv.URL + "/", OnBytes: func(n int) { seen += int64(n) }}
	name, res, err := c.Fetch(t.Context(), root, digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("verified file differs from the blob (err %v)", err)
	}
	if res.Requests != 1 || res.RangeRequests != 0 || res.Bytes != int64(len(content)) || seen != res.Bytes {
		t.Fatalf("result %+v, OnBytes saw %d", res, seen)
	}
	if files := listDir(t, dir); len(files) != 1 {
		t.Fatalf("staging holds %v, want only the verified blob", files)
	}
	// A second Fetch finds the verified blob and sends nothing.
	if _, res, err := c.Fetch(t.Context(), root, digest); err != nil || res.Requests != 0 {
		t.Fatalf("second Fetch: %+v, %v", res, err)
	}
}

// TestFetchResumesAfterCut: the repository cuts the connection after some
// bytes; the next request carries a Range from there and If-Range with the
// ETag, and the blob verifies.
func TestFetchResumesAfterCut(t *testing.T) {
	tests := map[string]struct {
		tries int
		// fetches is how many Fetch calls it takes.
		fetches int
	}{
		"within one Fetch":   {tries: 3, fetches: 1},
		"across two Fetches": {tries: 1, fetches: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := repotest.New(t)
			content := blob(1 << 20)
			digest := srv.Add(content)
			const cut = 200_000
			srv.CutNextAfter(cut)
			root, dir := staging(t)
			c := &Client{BaseURL: srv.URL, Tries: tc.tries}
			var err error
			for i := range tc.fetches {
				_, _, err = c.Fetch(t.Context(), root, digest)
				if i < tc.fetches-1 {
					if err == nil || !strings.Contains(err.Error(), "interrupted after 200000 bytes (kept for a resume)") {
						t.Fatalf("first Fetch: %v, want an interruption", err)
					}
					info, serr := os.Stat(filepath.Join(dir, digest[7:]+SuffixPartial))
					if serr != nil || info.Size() != cut {
						t.Fatalf("partial file after the cut: %v, %v", info, serr)
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 2 {
				t.Fatalf("requests = %+v, want 2", reqs)
			}
			if reqs[0].Range != "" || reqs[1].Range != fmt.Sprintf("bytes=%d-", cut) || reqs[1].IfRange != `"`+digest+`"` {
				t.Fatalf("requests = %+v, want the second to resume at %d with If-Range", reqs, cut)
			}
			got, err := os.ReadFile(filepath.Join(dir, digest[7:]+SuffixVerified))
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("resumed blob differs (err %v)", err)
			}
		})
	}
}

func TestFetchFailures(t *testing.T) {
	content := blob(50_000)
	tests := map[string]struct {
		setup    func(s *repotest.Server) string
		client   Client
		wantErr  error
		wantMsg  string
		wantLeft []string
	}{
		"digest mismatch": {
			setup: func(s *repotest.Server) string {
				d := repotest.Digest(content)
				s.AddAs(d, append(bytes.Clone(content), 'x'))
				return d
			},
			wantErr: ErrDigestMismatch,
			wantMsg: "digest mismatch: the repository sent 50001 bytes whose digest is sha256:",
		},
		"not found": {
			setup:   func(s *repotest.Server) string { return repotest.Digest([]byte("absent")) },
			wantMsg: "repository answered 404 Not Found for sha256:",
		},
		"too large by Content-Length": {
			setup:   func(s *repotest.Server) string { return s.Add(content) },
			client:  Client{MaxBytes: 1000},
			wantErr: ErrTooLarge,
			wantMsg: "blob too large: 50000 bytes, more than 1000",
		},
		"bad token": {
			setup: func(s *repotest.Server) string {
				s.RequireToken("secret")
				return s.Add(content)
			},
			wantMsg: "401 Unauthorized for sha256:",
		},
		"outage": {
			setup: func(s *repotest.Server) string {
				s.Down(true)
				return s.Add(content)
			},
			wantMsg: "503 Service Unavailable",
		},
		"stalled": {
			setup: func(s *repotest.Server) string {
				s.Stall(true)
				return s.Add(content)
			},
			client:   Client{IdleTimeout: 50 * time.Millisecond, Tries: 1},
			wantErr:  ErrIdle,
			wantMsg:  "download stalled: nothing received for 50ms",
			wantLeft: []string{"partial", "etag"},
		},
		"not a digest": {
			setup:   func(s *repotest.Server) string { return "sha256:XYZ" },
			wantErr: ErrBadDigest,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := repotest.New(t)
			digest := tc.setup(srv)
			root, dir := staging(t)
			c := tc.client
			c.BaseURL = srv.URL
			_, _, err := c.Fetch(t.Context(), root, digest)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
			left := listDir(t, dir)
			if len(left) != len(tc.wantLeft) {
				t.Fatalf("staging holds %v, want %v", left, tc.wantLeft)
			}
			for _, l := range left {
				if strings.HasSuffix(l, SuffixVerified) {
					t.Fatalf("a failed fetch left a verified blob: %v", left)
				}
			}
		})
	}
}

func TestFetchSendsToken(t *testing.T) {
	srv := repotest.New(t)
	srv.RequireToken("s3cret")
	digest := srv.Add(blob(10))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	root, _ := staging(t)
	c := &Client{BaseURL: srv.URL, TokenFile: tokenFile}
	if _, _, err := c.Fetch(t.Context(), root, digest); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[0].Authorization; got != "Bearer s3cret" {
		t.Fatalf("Authorization = %q", got)
	}
}

// TestFetchStartsOverWhenRangeIgnored: a repository that answers a resume
// with the whole blob (200) must not get it appended to the partial file.
func TestFetchStartsOverWhenRangeIgnored(t *testing.T) {
	srv := repotest.New(t)
	content := blob(400_000)
	digest := srv.Add(content)
	srv.CutNextAfter(100_000)
	root, dir := staging(t)
	c := &Client{BaseURL: srv.URL, Tries: 1}
	if _, _, err := c.Fetch(t.Context(), root, digest); err == nil {
		t.Fatal("first Fetch succeeded despite the cut")
	}
	srv.IgnoreRange(true)
	if _, res, err := c.Fetch(t.Context(), root, digest); err != nil || res.RangeRequests != 1 || res.Bytes != int64(len(content)) {
		t.Fatalf("Fetch = %+v, %v", res, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, digest[7:]+SuffixVerified))
	if !bytes.Equal(got, content) {
		t.Fatal("blob differs")
	}
}

func TestFetchPausesBetweenTries(t *testing.T) {
	srv := repotest.New(t)
	digest := srv.Add(blob(300_000))
	srv.CutNextAfter(1000)
	root, _ := staging(t)
	var pauses []int
	c := &Client{BaseURL: srv.URL, Pause: func(_ context.Context, try int) error { pauses = append(pauses, try); return nil }}
	if _, _, err := c.Fetch(t.Context(), root, digest); err != nil {
		t.Fatal(err)
	}
	if len(pauses) != 1 || pauses[0] != 2 {
		t.Fatalf("pauses = %v, want [2]", pauses)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := map[string]struct {
		in        string
		start     int64
		total     int64
		wantError bool
	}{
		"full":           {in: "bytes 100-199/200", start: 100, total: 200},
		"unknown total":  {in: "bytes 0-0/*", start: 0, total: -1},
		"end past total": {in: "bytes 0-200/200", wantError: true},
		"reversed":       {in: "bytes 9-1/20", wantError: true},
		"negative":       {in: "bytes -1-5/20", wantError: true},
		"no unit":        {in: "100-199/200", wantError: true},
		"garbage":        {in: "bytes x-y/z", wantError: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start, total, err := parseContentRange(tc.in)
			if (err != nil) != tc.wantError || (!tc.wantError && (start != tc.start || total != tc.total)) {
				t.Fatalf("parseContentRange(%q) = %d, %d, %v", tc.in, start, total, err)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 5-5/*", "bytes 1-0/1", "bytes 9223372036854775807-9223372036854775807/*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		start, total, err := parseContentRange(v)
		if err != nil {
			return
		}
		if start < 0 || total < -1 || (total >= 0 && start >= total) {
			t.Fatalf("parseContentRange(%q) = %d, %d", v, start, total)
		}
	})
}
