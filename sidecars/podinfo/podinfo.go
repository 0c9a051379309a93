package podinfo

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// MaxFileSize bounds the annotations file. The API server caps a pod's
// annotations at 256 KiB; quoting can at most quadruple that.
const MaxFileSize = 1 << 20

// Parse parses the downward API's annotations format: one KEY="VALUE" line
// per annotation, with VALUE quoted as by Go's strconv.Quote.
func Parse(b []byte) (map[string]string, error) {
	m := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		key, quoted, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("line %d: want KEY=\"VALUE\"", i+1)
		}
		v, err := strconv.Unquote(quoted)
		if err != nil {
			return nil, fmt.Errorf("line %d (key %q): value is not a quoted string: %w", i+1, shorten(key), err)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: key %q appears twice", i+1, shorten(key))
		}
		m[key] = v
	}
	return m, nil
}

func shorten(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Format writes annotations the way the kubelet does: sorted by key, one
// KEY="VALUE" line each, with no newline after the last.
func Format(annotations map[string]string) []byte {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(annotations[k]))
	}
	return b.Bytes()
}

// Read reads and parses the annotations file at path.
func Read(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read pod annotations: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read pod annotations %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("pod annotations %s: larger than %d bytes", path, MaxFileSize)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("pod annotations %s: %w", path, err)
	}
	return m, nil
}
