package framework

import (
	"strings"
	"sync"
)

// defaultTailBytes is what a TailBuffer with no Max keeps.
const defaultTailBytes = 16 << 10

// TailBuffer keeps the last Max bytes written to it (16 KiB when Max is
// 0): a process's last words, for an error message. It is safe for
// concurrent writers, such as a command's stdout and stderr.
type TailBuffer struct {
	Max int

	mu        sync.Mutex
	buf       []byte
	truncated bool
}

func (b *TailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.Max
	if limit <= 0 {
		limit = defaultTailBytes
	}
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.truncated = true
	}
	return len(p), nil
}

// String returns the kept bytes without the last newline, starting at a
// line boundary once earlier output was dropped.
func (b *TailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.buf)
	if i := strings.IndexByte(s, '\n'); b.truncated && i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimRight(s, "\n")
}
