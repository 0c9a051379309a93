package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/canonical"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
)

// fileServer serves one changeable body with the given validators and
// counts full answers (200) and conditional ones (304).
type fileServer struct {
	mu           sync.Mutex
	body         []byte
	etag         string
	lastModified time.Time
	full         atomic.Int32
	notModified  atomic.Int32
	auth         atomic.Value // last Authorization header seen
}

func (f *fileServer) set(body string, etag string, lastModified time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body, f.etag, f.lastModified = []byte(body), etag, lastModified
}

func (f *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	body, etag, lm := f.body, f.etag, f.lastModified
	f.mu.Unlock()
	f.auth.Store(r.Header.Get("Authorization"))
	if etag != "" {
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			f.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if !lm.IsZero() {
		w.Header().Set("Last-Modified", lm.UTC().Format(http.TimeFormat))
		if ims, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && etag == "" && !lm.After(ims) {
			f.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	f.full.Add(1)
	w.Write(body)
}

func newHTTP(t *testing.T, url string) *HTTP {
	return &HTTP{URL: url, AllowInsecure: true, SpoolDir: t.TempDir(), Limits: canonical.Limits{MaxBytes: 1 << 30}}
}

func TestHTTPChangeDetection(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		etag1, etag2 string
		lm1, lm2     time.Time
		wantRev1     string
	}{
		"ETag":          {etag1: `"v1"`, etag2: `"v2"`, wantRev1: `"v1"`},
		"Last-Modified": {lm1: t0, lm2: t0.Add(time.Hour), wantRev1: t0.Format(http.TimeFormat)},
		"neither": {
			wantRev1: "sha256:" + fmt.Sprintf("%x", sha256Of("one")),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fs := &fileServer{}
			fs.set("one", tc.etag1, tc.lm1)
			srv := httptest.NewServer(fs)
			defer srv.Close()
			h := newHTTP(t, srv.URL+"/data/config.json")

			res := mustFetch(t, h, store.Origin{})
			if res.Unchanged || res.Revision != tc.wantRev1 {
				t.Fatalf("first: unchanged %v revision %q, want %q", res.Unchanged, res.Revision, tc.wantRev1)
			}
			if got := contents(t, res); !slices.Equal(keys(got), []string{"config.json"}) || got["config.json"] != "one" {
				t.Fatalf("content %v", got)
			}
			again := mustFetch(t, h, res.Origin)
			validators := tc.etag1 != "" || !tc.lm1.IsZero()
			if again.Unchanged != validators {
				t.Fatalf("second check: unchanged %v, want %v", again.Unchanged, validators)
			}
			wantFull := int32(1)
			if !validators {
				wantFull = 2 // without validators every check downloads; the digest decides
			}
			if n := fs.full.Load(); n != wantFull {
				t.Fatalf("%d full GETs, want %d", n, wantFull)
			}
			fs.set("two", tc.etag2, tc.lm2)
			third := mustFetch(t, h, res.Origin)
			if third.Unchanged || contents(t, third)["config.json"] != "two" {
				t.Fatal("a changed file was not fetched")
			}
		})
	}
}

func TestHTTPArchives(t *testing.T) {
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	for _, e := range []struct{ name, body string }{{"./model/weights.bin", "w"}, {"./README", "r"}} {
		tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Size: int64(len(e.body)), Mode: 0o600, ModTime: time.Now()})
		tw.Write([]byte(e.body))
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	zw.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/a.tar", func(w http.ResponseWriter, _ *http.Request) { w.Write(plain.Bytes()) })
	mux.HandleFunc("/a.tar.gz", func(w http.ResponseWriter, _ *http.Request) { w.Write(gz.Bytes()) })
	mux.HandleFunc("/a.tgz", func(w http.ResponseWriter, _ *http.Request) { w.Write(gz.Bytes()) })
	mux.HandleFunc("/a.tar.gz.txt", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("text")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var digests []string
	for _, p := range []string{"/a.tar", "/a.tar.gz", "/a.tgz"} {
		res := mustFetch(t, newHTTP(t, srv.URL+p), store.Origin{})
		var buf bytes.Buffer
		if err := res.Write(&buf); err != nil {
			t.Fatal(err)
		}
		got := tarContents(t, buf.Bytes())
		if want := []string{"README", "model/", "model/weights.bin"}; !slices.Equal(keys(got), want) {
			t.Fatalf("%s: entries %v, want %v", p, keys(got), want)
		}
		digests = append(digests, fmt.Sprintf("%x", sha256Of(buf.String())))
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Fatalf("the same archive packed three ways gave digests %v", digests)
	}
	got := contents(t, mustFetch(t, newHTTP(t, srv.URL+"/a.tar.gz.txt"), store.Origin{}))
	if got["a.tar.gz.txt"] != "text" {
		t.Fatalf("a non-archive: %v", got)
	}
}

func TestHTTPArchiveWithSymlinkRefused(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/etc"})
	tw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(buf.Bytes()) }))
	defer srv.Close()
	res := mustFetch(t, newHTTP(t, srv.URL+"/x.tar"), store.Origin{})
	err := res.Write(&bytes.Buffer{})
	want := `archive x.tar: archive entry "etc" is a symbolic link; a source may contain only directories and regular files`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestHTTPRedirects(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.Write([]byte("elsewhere"))
	}))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other.URL+"/f", http.StatusFound) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/here/f.txt", http.StatusMovedPermanently)
	})
	var auth atomic.Value
	mux.HandleFunc("/here/f.txt", func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Write([]byte("here"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	h := newHTTP(t, srv.URL+"/away")
	h.Credentials = func() (Credentials, error) { return Credentials{Username: "u", Password: "pw-secret"}, nil }
	_, err := h.Fetch(t.Context(), store.Origin{})
	want := "GET " + srv.URL + "/away: redirect to another host refused"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("the other host got %d requests; credentials must never go there", n)
	}

	// Same host: followed, with the credentials.
	h = newHTTP(t, srv.URL+"/moved")
	h.Credentials = func() (Credentials, error) { return Credentials{Token: "tok"}, nil }
	if got := contents(t, mustFetch(t, h, store.Origin{}))["moved"]; got != "here" {
		t.Fatalf("same-host redirect: %q", got)
	}
	if got := auth.Load(); got != "Bearer tok" {
		t.Fatalf("Authorization %q on the same host", got)
	}
}

func TestHTTPBodyBound(t *testing.T) {
	big := strings.Repeat("x", 2048)
	mux := http.NewServeMux()
	mux.HandleFunc("/sized", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(big)) })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		for range 4 {
			w.Write([]byte(big[:512]))
			w.(http.Flusher).Flush()
		}
		w.Write([]byte("!"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]string{
		"/sized":   "body of 2048 bytes is larger than the limit of 1024",
		"/chunked": "body larger than the limit of 2048 bytes",
	} {
		h := newHTTP(t, srv.URL+path)
		h.MaxBodyBytes = int64(len(big) / 2)
		if path == "/chunked" {
			h.MaxBodyBytes = 2048
		}
		_, err := h.Fetch(t.Context(), store.Origin{})
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", path, err, want)
		}
		if entries, _ := os.ReadDir(h.SpoolDir); len(entries) != 0 {
			t.Errorf("%s: spool left behind: %v", path, entries)
		}
	}
}

func TestHTTPRefusals(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	tests := map[string]struct {
		h    *HTTP
		want string
	}{
		"plaintext not allowed": {h: &HTTP{URL: srv.URL + "/f"}, want: "http:// is plaintext; allow it for this source with --allow-insecure, or use https://"},
		"no file name":          {h: &HTTP{URL: srv.URL + "/dir/", AllowInsecure: true}, want: `http location "` + srv.URL + `/dir/" names no file`},
		"userinfo":              {h: &HTTP{URL: "https://u:p@h/f"}, want: `http location "https://REDACTED@h/f": must be an http(s) URL without userinfo`},
		"not found":             {h: &HTTP{URL: srv.URL + "/f", AllowInsecure: true}, want: "GET " + srv.URL + "/f: HTTP 404 Not Found"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.h.SpoolDir = t.TempDir()
			_, err := tc.h.Fetch(t.Context(), store.Origin{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHTTPHeaderBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("h", MaxResponseHeaderBytes+1))
		w.Write([]byte("x"))
	}))
	defer srv.Close()
	_, err := newHTTP(t, srv.URL+"/f").Fetch(t.Context(), store.Origin{})
	if err == nil || !strings.Contains(err.Error(), "server response headers exceeded") {
		t.Fatalf("got %v, want the header bound", err)
	}
}
