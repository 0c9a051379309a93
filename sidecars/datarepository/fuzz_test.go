package datarepository

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-logr/logr"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
	"github.com/autocrane/autocrane/spec"
)

// readyServer is a Server with its store open and one source "d" holding
// one version, answering through its Handler, without the sync loops.
func readyServer(t testing.TB, content []byte) (*Server, Version) {
	t.Helper()
	s, err := New(Options{Root: t.TempDir(), Sources: []string{"d=dir:/unused"}, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	if err := s.store.Declare("d", "dir", "/unused"); err != nil {
		t.Fatal(err)
	}
	blob, err := s.store.NewBlob(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blob.Write(content); err != nil {
		t.Fatal(err)
	}
	v, _, err := s.store.Commit("d", blob, "r1", store.Origin{Location: "/unused"})
	if err != nil {
		t.Fatal(err)
	}
	s.runners["d"] = &runner{src: spec.Source{Name: "d", Kind: spec.SourceDir, Location: "/unused"}, trigger: make(chan struct{}, 1), done: make(chan struct{})}
	s.ready.Store(true)
	return s, Version{ID: v.ID, Digest: v.Digest, Size: v.Size, Created: v.Created, Revision: v.Revision}
}

var fuzzMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete}

// FuzzHandler sends arbitrary requests to the API: it never fails with a
// 5xx or a panic, and a blob is only ever served for the one valid digest.
func FuzzHandler(f *testing.F) {
	f.Add(uint8(0), "/v1/sources", "", "")
	f.Add(uint8(0), "/v1/sources/d", "", "")
	f.Add(uint8(2), "/v1/sources/d/sync", "", "")
	f.Add(uint8(3), "/v1/sources/d/pins", `{"versions":[]}`, "")
	f.Add(uint8(3), "/v1/sources/d/pins", `{"versions":["x"],"extra":1}`, "")
	f.Add(uint8(0), "/v1/blobs/sha256:"+strings.Repeat("a", 64), "", "bytes=1-2")
	f.Add(uint8(0), "/v1/blobs/../sources/d.json", "", "")
	f.Add(uint8(0), "/v1/blobs/sha256:%2e%2e%2f", "", "bytes=-1")
	f.Add(uint8(1), "/v1/sources/D", "", "")
	s, v := readyServer(f, []byte(strings.Repeat("blob", 100)))
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method uint8, path, body, rangeHeader string) {
		u, err := url.Parse("http://repo" + path)
		if err != nil || !strings.HasPrefix(path, "/") {
			return
		}
		req := httptest.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "http://repo/", bytes.NewReader([]byte(body)))
		req.URL = u
		req.RequestURI = u.RequestURI()
		if rangeHeader != "" {
			req.Header.Set("Range", rangeHeader)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: HTTP %d: %s", req.Method, path, rec.Code, rec.Body.String())
		}
		ok := rec.Code == http.StatusOK || rec.Code == http.StatusPartialContent
		if ok && rec.Header().Get("Content-Type") == BlobContentType && u.Path != BlobPath(v.Digest) {
			t.Fatalf("served a blob for %q", u.Path)
		}
	})
}

func FuzzDecodePins(f *testing.F) {
	f.Add(`{"versions":["20261121t150405z-abcdef012345"]}`)
	f.Add(`{"versions":[]}`)
	f.Add(`{"versions":null}`)
	f.Add(`{"versions":["A"]}`)
	f.Add(`{"versions":[]} {}`)
	f.Add(`{"versions":[], "x":1}`)
	f.Fuzz(func(t *testing.T, body string) {
		ids, err := decodePins(strings.NewReader(body))
		if err != nil {
			return
		}
		if len(ids) > MaxPins {
			t.Fatalf("%d pins accepted", len(ids))
		}
		for _, id := range ids {
			if spec.ValidateVersionID(id) != nil {
				t.Fatalf("accepted id %q", id)
			}
		}
	})
}

// TestHandlerWithoutSyncLoops checks readyServer itself, so the fuzz
// target's baseline is known to work.
func TestHandlerWithoutSyncLoops(t *testing.T) {
	s, v := readyServer(t, []byte("content"))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + BlobPath(v.Digest))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(data) != "content" {
		t.Fatalf("HTTP %d %q", resp.StatusCode, data)
	}
	c := &Client{BaseURL: srv.URL}
	if err := c.Sync(t.Context(), "d"); err != nil {
		t.Fatal(err)
	}
	st, err := c.SetPins(t.Context(), "d", []string{v.ID})
	if err != nil || len(st.Pins) != 1 {
		t.Fatalf("SetPins: %v %+v", err, st)
	}
}
