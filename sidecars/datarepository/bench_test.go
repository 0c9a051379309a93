package datarepository

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// benchBlobBytes is the size of the benchmarks' blob: 256 MiB.
const benchBlobBytes = 256 << 20

// benchContent is incompressible, reproducible content.
func benchContent() []byte {
	b := make([]byte, benchBlobBytes)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// BenchmarkBlobServe downloads a 256 MiB blob over loopback HTTP (the
// repository's handler in a real server) into io.Discard.
func BenchmarkBlobServe(b *testing.B) {
	s, v := readyServer(b, benchContent())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	url := srv.URL + BlobPath(v.Digest)
	b.SetBytes(benchBlobBytes)
	b.ResetTimer()
	for range b.N {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != benchBlobBytes {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

// BenchmarkBlobServeToFile is BenchmarkBlobServe writing the body to a
// file on the same disk, as a deployer does.
func BenchmarkBlobServeToFile(b *testing.B) {
	s, v := readyServer(b, benchContent())
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	url := srv.URL + BlobPath(v.Digest)
	dst := filepath.Join(b.TempDir(), "download")
	b.SetBytes(benchBlobBytes)
	b.ResetTimer()
	for range b.N {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(f, resp.Body)
		resp.Body.Close()
		f.Close()
		if err != nil || n != benchBlobBytes {
			b.Fatalf("wrote %d bytes: %v", n, err)
		}
	}
}

// BenchmarkFileCopy is the baseline: io.Copy of a 256 MiB file to a new
// file on the same disk (copy_file_range on Linux).
func BenchmarkFileCopy(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, benchContent(), 0o644); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "dst")
	b.SetBytes(benchBlobBytes)
	b.ResetTimer()
	for range b.N {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(out, in)
		in.Close()
		out.Close()
		if err != nil || n != benchBlobBytes {
			b.Fatalf("copied %d bytes: %v", n, err)
		}
	}
}
