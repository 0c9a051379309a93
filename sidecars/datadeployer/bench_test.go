package datadeployer

import (
	"fmt"
	"testing"
)

// BenchmarkPublish measures the swap: a new symlink renamed over
// LOCATION/NAME, alternating between two extracted versions.
func BenchmarkPublish(b *testing.B) {
	location := b.TempDir()
	st, err := openStore(location)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var hexes []string
	for i := range 2 {
		v := newVersion(b, fmt.Sprintf("v%d", i))
		h := v.digest[7:]
		if err := st.staging.WriteFile(verifiedBlob(h), v.content, 0o600); err != nil {
			b.Fatal(err)
		}
		if _, err := st.extract(b.Context(), h, verifiedBlob(h), testLimits()); err != nil {
			b.Fatal(err)
		}
		hexes = append(hexes, h)
	}
	i := 0
	for b.Loop() {
		if err := st.publish("models", hexes[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkExtractVersion measures store.extract end to end: the tar read
// from the staged file, re-hashed, written through os.Root, the tree
// verified and renamed into place. Bytes are the blob's.
func BenchmarkExtractVersion(b *testing.B) {
	for _, tc := range []struct {
		name     string
		files    int
		fileSize int
	}{
		{"64x1MiB", 64, 1 << 20},
		{"4096x4KiB", 4096, 4 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			files := map[string]string{}
			body := make([]byte, tc.fileSize)
			for i := range body {
				body[i] = byte(i)
			}
			for i := range tc.files {
				files[fmt.Sprintf("d%02d/f%05d", i%32, i)] = string(body)
			}
			content := tarFiles(b, files)
			location := b.TempDir()
			st, err := openStore(location)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			v := version{content: content, digest: digestOf(content)}
			h := v.digest[7:]
			if err := st.staging.WriteFile(verifiedBlob(h), content, 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(content)))
			for b.Loop() {
				if _, err := st.extract(b.Context(), h, verifiedBlob(h), testLimits()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := st.removeVersion(h); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
