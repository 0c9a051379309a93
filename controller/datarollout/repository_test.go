package datarollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeRepositoryServer serves the data repository's API for one source
// on loopback, and records the pin requests.
type fakeRepositoryServer struct {
	mu      sync.Mutex
	source  string
	body    string
	status  int
	pins    [][]string
	auth    []string
	methods []string
}

func (f *fakeRepositoryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.methods = append(f.methods, r.Method+" "+r.URL.Path)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/base/v1/sources/"+f.source:
		if f.status != 0 {
			w.WriteHeader(f.status)
		}
		_, _ = io.WriteString(w, f.body)
	case r.Method == http.MethodPut && r.URL.Path == "/base/v1/sources/"+f.source+"/pins":
		var req struct {
			Versions []string `json:"versions"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"error":"bad pins"}`, http.StatusBadRequest)
			return
		}
		f.pins = append(f.pins, req.Versions)
		_, _ = io.WriteString(w, `{"name":"`+f.source+`","versions":[],"pins":[]}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"unknown source \"nope\""}`)
	}
}

func sourceBody(name string, vs ...Version) string {
	type v struct {
		ID      string    `json:"id"`
		Digest  string    `json:"digest"`
		Size    int64     `json:"size"`
		Created time.Time `json:"created"`
	}
	var list []v
	for _, x := range vs {
		list = append(list, v{ID: x.ID, Digest: x.Digest, Size: 10240, Created: t0})
	}
	b, _ := json.Marshal(map[string]any{"name": name, "kind": "git", "versions": list, "pins": []string{"v1"}})
	return string(b)
}

func TestHTTPRepositorySource(t *testing.T) {
	tests := map[string]struct {
		body    string
		status  int
		source  string
		want    Catalog
		wantErr string
	}{
		"versions and pins": {
			body: sourceBody("models", ver(1), ver(2)), source: "models",
			want: Catalog{Reachable: true, Versions: versions(1, 2), Pins: []string{"v1"}},
		},
		"no versions yet": {
			body: `{"name":"models","versions":[],"pins":[]}`, source: "models",
			want: Catalog{Reachable: true, Versions: []Version{}, Pins: []string{}},
		},
		"an unknown source": {source: "nope", wantErr: `HTTP 404: unknown source "nope"`},
		"a server error":    {body: "boom", status: http.StatusBadGateway, source: "models", wantErr: "HTTP 502: Bad Gateway"},
		"an invalid version id": {
			body: `{"name":"models","versions":[{"id":"../etc","digest":"sha256:` + strings.Repeat("a", 64) + `"}]}`, source: "models",
			wantErr: "version id",
		},
		"an invalid digest": {body: `{"name":"models","versions":[{"id":"v1","digest":"sha256:xyz"}]}`, source: "models", wantErr: "digest"},
		"a version listed twice": {
			body: sourceBody("models", ver(1), ver(1)), source: "models", wantErr: "lists version v1 twice",
		},
		"another source's answer": {body: sourceBody("other", ver(1)), source: "models", wantErr: `got "other"`},
		"not JSON":                {body: "<html>", source: "models", wantErr: "decode source models"},
		"too large":               {body: `{"name":"models","pad":"` + strings.Repeat("x", maxRepositoryBody) + `"}`, source: "models", wantErr: "larger than"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := &fakeRepositoryServer{source: "models", body: tc.body, status: tc.status}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			repo := NewHTTPRepository(5*time.Second, nil)
			got, err := repo.Source(t.Context(), ts.URL+"/base/", tc.source)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPRepositoryPin(t *testing.T) {
	srv := &fakeRepositoryServer{source: "models"}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	token := func(base string) string {
		if strings.HasPrefix(base, ts.URL) {
			return "s3cret"
		}
		return ""
	}
	repo := NewHTTPRepository(5*time.Second, token)
	if err := repo.Pin(t.Context(), ts.URL+"/base", "models", []string{"v1", "v2"}); err != nil {
		t.Fatal(err)
	}
	if err := repo.Pin(t.Context(), ts.URL+"/base", "models", nil); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if diff := cmp.Diff([][]string{{"v1", "v2"}, {}}, srv.pins); diff != "" {
		t.Errorf("pins (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Bearer s3cret", "Bearer s3cret"}, srv.auth); diff != "" {
		t.Errorf("authorization (-want +got):\n%s", diff)
	}
	many := make([]string, maxPins+1)
	for i := range many {
		many[i] = fmt.Sprintf("v%d", i)
	}
	if err := repo.Pin(t.Context(), ts.URL+"/base", "models", many); err == nil {
		t.Error("more pins than the repository takes were sent")
	}
}

// TestHTTPRepositoryNoRedirect: a store URL comes from users; a redirect
// must not take the controller elsewhere.
func TestHTTPRepositoryNoRedirect(t *testing.T) {
	var followed atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/v1/sources/models", http.StatusFound)
	}))
	defer redirect.Close()
	repo := NewHTTPRepository(5*time.Second, nil)
	_, err := repo.Source(t.Context(), redirect.URL, "models")
	var rerr *RepositoryError
	if !errors.As(err, &rerr) || rerr.StatusCode != http.StatusFound {
		t.Fatalf("error %v, want the 302 itself", err)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}
