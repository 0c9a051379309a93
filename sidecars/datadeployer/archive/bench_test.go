package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var benchShapes = []struct {
	name     string
	files    int
	fileSize int
}{
	{"64x1MiB", 64, 1 << 20},
	{"4096x4KiB", 4096, 4 << 10},
}

func benchTar(b *testing.B, files, size int) []byte {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i)
	}
	var entries []entry
	for i := range files {
		entries = append(entries, file(fmt.Sprintf("d%02d/f%05d", i%32, i), string(body)))
	}
	return makeTar(b, entries...)
}

// BenchmarkExtract measures Extract alone: an in-memory tar written through
// os.Root into a fresh directory. Bytes are the archive's.
func BenchmarkExtract(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			data := benchTar(b, s.files, s.fileSize)
			base := b.TempDir()
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				dst := filepath.Join(base, fmt.Sprint(i))
				i++
				if err := os.Mkdir(dst, 0o700); err != nil {
					b.Fatal(err)
				}
				root, err := os.OpenRoot(dst)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Extract(b.Context(), root, bytes.NewReader(data), DefaultLimits()); err != nil {
					b.Fatal(err)
				}
				root.Close()
				b.StopTimer()
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkBaselinePlainPaths writes the same archives the unsafe way
// (plain paths, no checks, no mode fixing), to show what os.Root and the
// checks cost on top of the file system. Never do this in production.
func BenchmarkBaselinePlainPaths(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			data := benchTar(b, s.files, s.fileSize)
			base := b.TempDir()
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				dst := filepath.Join(base, fmt.Sprint(i))
				i++
				tr := tar.NewReader(bytes.NewReader(data))
				for {
					hdr, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					p := filepath.Join(dst, hdr.Name)
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						b.Fatal(err)
					}
					f, err := os.Create(p)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(f, tr); err != nil {
						b.Fatal(err)
					}
					f.Close()
				}
				b.StopTimer()
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
