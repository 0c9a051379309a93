package datarepository

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBlobAPI(t *testing.T) {
	data := t.TempDir()
	writeTree(t, data, map[string]string{"big": strings.Repeat("0123456789", 10000)})
	r := start(t, Options{Sources: []string{"d=dir:" + data}, PollInterval: time.Hour})
	v := r.waitVersions(t, "d", 1).Versions[0]
	whole := blobBytes(t, r, v.Digest)

	// Resume from an offset, as a deployer does after a broken download.
	for _, offset := range []int64{1, 512, int64(len(whole)) - 1} {
		body, size, err := r.client.OpenBlob(t.Context(), v.Digest, offset)
		if err != nil {
			t.Fatalf("offset %d: %v", offset, err)
		}
		rest, _ := io.ReadAll(body)
		body.Close()
		if size != int64(len(whole)) || string(rest) != string(whole[offset:]) {
			t.Fatalf("offset %d: size %d, %d bytes", offset, size, len(rest))
		}
	}

	get := func(path string, header map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, r.url+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	tests := map[string]struct {
		path     string
		header   map[string]string
		wantCode int
		check    func(*http.Response) string
	}{
		"whole blob": {path: BlobPath(v.Digest), wantCode: http.StatusOK, check: func(resp *http.Response) string {
			if resp.Header.Get("ETag") != `"`+v.Digest+`"` || resp.Header.Get("Content-Type") != BlobContentType ||
				resp.Header.Get("Accept-Ranges") != "bytes" || resp.ContentLength != v.Size {
				return fmt.Sprintf("headers %v, length %d", resp.Header, resp.ContentLength)
			}
			return ""
		}},
		"range":             {path: BlobPath(v.Digest), header: map[string]string{"Range": "bytes=10-19"}, wantCode: http.StatusPartialContent},
		"if-none-match":     {path: BlobPath(v.Digest), header: map[string]string{"If-None-Match": `"` + v.Digest + `"`}, wantCode: http.StatusNotModified},
		"if-range mismatch": {path: BlobPath(v.Digest), header: map[string]string{"Range": "bytes=10-", "If-Range": `"sha256:x"`}, wantCode: http.StatusOK},
		"unknown":           {path: BlobPath("sha256:" + strings.Repeat("0", 64)), wantCode: http.StatusNotFound},
		"malformed":         {path: BlobPath("sha256:abc"), wantCode: http.StatusBadRequest},
		"upper-case hex":    {path: BlobPath("sha256:" + strings.Repeat("A", 64)), wantCode: http.StatusBadRequest},
		"dot-dot":           {path: "/v1/blobs/..%2F..%2Fsources%2Fd.json", wantCode: http.StatusBadRequest},
		"unknown source":    {path: SourcePath("nope"), wantCode: http.StatusNotFound},
		"bad source name":   {path: SourcePath("No_Such"), wantCode: http.StatusBadRequest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := get(tc.path, tc.header)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if tc.check != nil {
				if msg := tc.check(resp); msg != "" {
					t.Fatal(msg)
				}
			}
		})
	}
	if n := metricValue(t, r, "", "autocrane_datarepository_blob_bytes_served_total"); n == "" || n == "0" {
		t.Fatalf("bytes served = %q", n)
	}
}

func TestTokenAuth(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("first-token\n"), 0o600)
	data := t.TempDir()
	writeTree(t, data, map[string]string{"f": "x"})
	r := start(t, Options{Sources: []string{"d=dir:" + data}, TokenFile: tokenFile, PollInterval: time.Hour})
	status := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, r.url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	blob := BlobPath("sha256:" + strings.Repeat("0", 64))
	tests := map[string]struct {
		path, token string
		want        int
	}{
		"healthz open":         {path: "/healthz", want: http.StatusOK},
		"readyz open":          {path: "/readyz", want: http.StatusOK},
		"sources need a token": {path: PathSources, want: http.StatusUnauthorized},
		"blobs need a token":   {path: blob, want: http.StatusUnauthorized},
		"metrics need a token": {path: "/metrics", want: http.StatusUnauthorized},
		"wrong token":          {path: PathSources, token: "first-tokeN", want: http.StatusUnauthorized},
		"prefix of the token":  {path: PathSources, token: "first", want: http.StatusUnauthorized},
		"right token":          {path: PathSources, token: "first-token", want: http.StatusOK},
		"right token, blob":    {path: blob, token: "first-token", want: http.StatusNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := status(tc.path, tc.token); got != tc.want {
				t.Fatalf("HTTP %d, want %d", got, tc.want)
			}
		})
	}
	r.client.Token = "first-token"
	if _, err := r.client.Sources(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A rotated Secret applies without a restart.
	os.WriteFile(tokenFile, []byte("second-token-longer"), 0o600)
	waitFor(t, "the new token", func() bool { return status(PathSources, "second-token-longer") == http.StatusOK })
	if got := status(PathSources, "first-token"); got != http.StatusUnauthorized {
		t.Fatalf("the old token still works: %d", got)
	}
}

func TestRetentionPinsGCAndRestart(t *testing.T) {
	root, data := t.TempDir(), t.TempDir()
	opts := Options{Root: root, Sources: []string{"d=dir:" + data}, PollInterval: time.Hour, Keep: 2}
	writeTree(t, data, map[string]string{"f": "content 0"})
	r := start(t, opts)
	first := r.waitVersions(t, "d", 1).Versions[0]
	ids, digests := []string{first.ID}, []string{first.Digest}
	// The rollout controller pins the first version (its LKG).
	pinned, err := r.client.SetPins(t.Context(), "d", []string{ids[0]})
	if err != nil || !slices.Equal(pinned.Pins, ids[:1]) {
		t.Fatalf("SetPins: %v, %+v", err, pinned)
	}
	for i := 1; i < 4; i++ {
		writeTree(t, data, map[string]string{"f": fmt.Sprint("content ", i)})
		r.client.Sync(t.Context(), "d")
		var st SourceStatus
		waitFor(t, "a new version", func() bool {
			st, _ = r.client.Source(t.Context(), "d")
			return st.Latest() != nil && st.Latest().ID != ids[len(ids)-1]
		})
		ids = append(ids, st.Latest().ID)
		digests = append(digests, st.Latest().Digest)
	}
	st, _ := r.client.Source(t.Context(), "d")
	want := []string{ids[0], ids[2], ids[3]}
	if got := versionIDs(st); !slices.Equal(got, want) {
		t.Fatalf("versions %v, want the pinned %s and the newest two", got, ids[0])
	}
	if _, _, err := r.client.OpenBlob(t.Context(), digests[1], 0); !IsNotFound(err) {
		t.Fatalf("collected blob: %v", err)
	}
	if n := metricValue(t, r, "", "autocrane_datarepository_gc_blobs_deleted_total"); n != "1" {
		t.Fatalf("gc'd blobs = %q, want 1", n)
	}
	// Pins of unknown or malformed ids are refused and change nothing.
	if _, err := r.client.SetPins(t.Context(), "d", []string{ids[1]}); !IsNotFound(err) {
		t.Fatalf("pin of a collected version: %v", err)
	}
	if _, err := r.client.SetPins(t.Context(), "d", []string{"Bad_ID"}); err == nil || err.(*APIError).StatusCode != http.StatusBadRequest {
		t.Fatalf("pin of a malformed id: %v", err)
	}

	r.stop(t)
	r2 := start(t, opts)
	st2, err := r2.client.Source(t.Context(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versionIDs(st2), want) || !slices.Equal(st2.Pins, ids[:1]) {
		t.Fatalf("after a restart: %+v", st2)
	}
	for i, v := range st.Versions {
		if st2.Versions[i] != v {
			t.Fatalf("version changed across the restart: %+v vs %+v", st2.Versions[i], v)
		}
		blobBytes(t, r2, v.Digest)
	}
	// Unpinning lets the old version go at once.
	if _, err := r2.client.SetPins(t.Context(), "d", nil); err != nil {
		t.Fatal(err)
	}
	if got := versionIDs(r2.waitVersions(t, "d", 2)); !slices.Equal(got, ids[2:]) {
		t.Fatalf("after unpinning: %v", got)
	}
}

func versionIDs(st SourceStatus) []string {
	out := make([]string, len(st.Versions))
	for i, v := range st.Versions {
		out[i] = v.ID
	}
	return out
}

func TestAnnotationsFileAddsAndRemovesSources(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	writeTree(t, data, map[string]string{"f": "x"})
	file := filepath.Join(dir, "annotations")
	writeAnnotations := func(m map[string]string) {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&b, "%s=%q\n", k, m[k])
		}
		// Atomic, like the kubelet: the watcher must never see half a file.
		tmp := file + ".tmp"
		os.WriteFile(tmp, []byte(b.String()), 0o644)
		os.Rename(tmp, file)
	}
	writeAnnotations(map[string]string{"data.autocrane.io/a": "dir:" + data, "other": "x"})
	r := start(t, Options{AnnotationsFile: file, PollInterval: time.Hour, ConfigPollInterval: time.Hour})
	a := r.waitVersions(t, "a", 1)

	writeAnnotations(map[string]string{"data.autocrane.io/a": "dir:" + data, "data.autocrane.io/b": "dir:" + data})
	b := r.waitVersions(t, "b", 1)
	if b.Latest().Digest != a.Latest().Digest {
		t.Fatal("the same directory under two names has two digests")
	}
	// A typo keeps the previous declaration of a.
	writeAnnotations(map[string]string{"data.autocrane.io/a": "dri:" + data, "data.autocrane.io/b": "dir:" + data})
	waitFor(t, "the typo to be read", func() bool { return strings.Contains(r.srv.problemsText(), "dri") })
	if _, err := r.client.Source(t.Context(), "a"); err != nil {
		t.Fatalf("a typo dropped a: %v", err)
	}
	// Removing both forgets them and deletes their blobs.
	writeAnnotations(map[string]string{})
	waitFor(t, "the sources to go", func() bool {
		list, err := r.client.Sources(t.Context())
		return err == nil && len(list) == 0
	})
	if _, _, err := r.client.OpenBlob(t.Context(), a.Latest().Digest, 0); !IsNotFound(err) {
		t.Fatalf("a removed source's blob: %v", err)
	}
}
