package podinfo

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "kubelet format", in: "a=\"1\"\nprobe.autocrane.io/x=\"POD_IP:8080/w\"",
			want: map[string]string{"a": "1", "probe.autocrane.io/x": "POD_IP:8080/w"}},
		{name: "escapes and equals sign in value", in: `k="a=b\n\"c\"\u00e9"`, want: map[string]string{"k": "a=b\n\"c\"é"}},
		{name: "trailing newline", in: "a=\"1\"\n", want: map[string]string{"a": "1"}},
		{name: "no equals", in: "a", wantErr: "line 1: want KEY=\"VALUE\""},
		{name: "unquoted", in: "a=1", wantErr: "line 1 (key \"a\"): value is not a quoted string"},
		{name: "duplicate", in: "a=\"1\"\na=\"2\"", wantErr: "line 2: key \"a\" appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("Parse = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("a=\"1\"\nb=\"x\\ny\""))
	f.Add([]byte("k=\"\\u00e9\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(Format(m))
		if err != nil || !maps.Equal(m, again) {
			t.Fatalf("Format does not round-trip %q: %v %v", m, again, err)
		}
	})
}

// TestWatchSeesKubeletSwaps plays the kubelet: each write swaps the ..data
// symlink, and the watcher must deliver every distinct content, never a
// partial one.
func TestWatchSeesKubeletSwaps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "annotations")
	if err := WriteLikeKubelet(dir, "annotations", map[string]string{"v": "0"}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	w := Watcher{Path: path, PollInterval: 50 * time.Millisecond, Log: testr.New(t), OnChange: func(m map[string]string) {
		mu.Lock()
		seen = append(seen, m["v"])
		mu.Unlock()
	}}
	go func() { done <- w.Watch(ctx) }()
	defer func() { cancel(); <-done }()

	waitFor := func(v string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			last := ""
			if len(seen) > 0 {
				last = seen[len(seen)-1]
			}
			mu.Unlock()
			if last == v {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("watcher never delivered v=%s; saw %v", v, seen)
	}
	waitFor("0")
	for _, v := range []string{"1", "2", "3"} {
		if err := WriteLikeKubelet(dir, "annotations", map[string]string{"v": v}); err != nil {
			t.Fatal(err)
		}
		waitFor(v)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seen); i++ {
		if seen[i] == seen[i-1] {
			t.Errorf("delivered the same annotations twice in a row: %v", seen)
		}
	}
	if m, err := Read(path); err != nil || m["v"] != "3" {
		t.Fatalf("Read = %v, %v", m, err)
	}
}
