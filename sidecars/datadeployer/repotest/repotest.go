package repotest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is what the server saw of one request.
type Request struct {
	Path          string
	Range         string
	IfRange       string
	Authorization string
}

// Server serves blobs. Its zero value is not usable; call New.
type Server struct {
	URL string

	mu          sync.Mutex
	blobs       map[string][]byte
	requests    []Request
	cutAfter    int64 // abort the next response after this many bytes; 0: off
	stall       bool
	ignoreRange bool
	token       string
	down        bool
}

// New starts a server on 127.0.0.1, stopped when the test ends.
func New(t testing.TB) *Server {
	s := &Server{blobs: map[string][]byte{}}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Digest is content's sha256 digest, as sha256:HEX.
func Digest(content []byte) string {
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Add serves content at its digest and returns the digest.
func (s *Server) Add(content []byte) string {
	d := Digest(content)
	s.AddAs(d, content)
	return d
}

// AddAs serves content under digest, even when it does not match.
func (s *Server) AddAs(digest string, content []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[digest] = content
}

// CutNextAfter makes the next response end abruptly after n body bytes.
func (s *Server) CutNextAfter(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cutAfter = n
}

// Stall makes every response send its headers and a few bytes, then wait
// until the client gives up.
func (s *Server) Stall(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall = on
}

// IgnoreRange makes the server answer every request with the whole blob.
func (s *Server) IgnoreRange(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ignoreRange = on
}

// RequireToken makes the server answer 401 unless the request carries
// "Authorization: Bearer token". Empty turns the check off.
func (s *Server) RequireToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Down makes every request fail with 503, like a repository outage.
func (s *Server) Down(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = on
}

// Requests returns what the server saw so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, Range: r.Header.Get("Range"), IfRange: r.Header.Get("If-Range"), Authorization: r.Header.Get("Authorization")})
	digest, _ := strings.CutPrefix(r.URL.Path, "/v1/blobs/")
	content, ok := s.blobs[digest]
	cut, stall, ignoreRange, token, down := s.cutAfter, s.stall, s.ignoreRange, s.token, s.down
	s.cutAfter = 0
	s.mu.Unlock()

	switch {
	case down:
		http.Error(w, "repository down", http.StatusServiceUnavailable)
		return
	case token != "" && r.Header.Get("Authorization") != "Bearer "+token:
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	case !ok:
		http.NotFound(w, r)
		return
	}
	if ignoreRange {
		r.Header.Del("Range")
	}
	w.Header().Set("ETag", `"`+digest+`"`)
	w.Header().Set("Content-Type", "application/x-tar")
	var out http.ResponseWriter = w
	if cut > 0 {
		out = &cutWriter{ResponseWriter: w, left: cut}
	}
	if stall {
		out = &stallWriter{ResponseWriter: w, ctx: r}
	}
	http.ServeContent(out, r, "", time.Time{}, bytes.NewReader(content))
}

// cutWriter aborts the connection once left bytes are written.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) >= c.left {
		_, _ = c.ResponseWriter.Write(b[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		c.left = 0
		panic(http.ErrAbortHandler)
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

// stallWriter sends one byte, then blocks until the client leaves.
type stallWriter struct {
	http.ResponseWriter
	ctx *http.Request
}

func (s *stallWriter) Write(b []byte) (int, error) {
	if len(b) > 0 {
		_, _ = s.ResponseWriter.Write(b[:1])
		s.ResponseWriter.(http.Flusher).Flush()
	}
	<-s.ctx.Context().Done()
	return 0, s.ctx.Context().Err()
}

// Tar builds an archive of regular files (directories implied), in name
// order.
func Tar(t testing.TB, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
