package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of Client.
const (
	DefaultIdleTimeout = time.Minute
	DefaultTries       = 5
)

// File name suffixes in the staging directory, after the digest's hex.
const (
	SuffixPartial  = ".partial"
	SuffixETag     = ".etag"
	SuffixVerified = ".tar"
)

// Errors a download can end with; match them with errors.Is.
var (
	ErrDigestMismatch = errors.New("digest mismatch")
	ErrTooLarge       = errors.New("blob too large")
	ErrIdle           = errors.New("download stalled")
	ErrBadDigest      = errors.New("not a sha256 digest")
)

// StatusError is a repository answer other than 200 or 206.
type StatusError struct {
	Digest string
	Code   int
}

func (e *StatusError) Error() string {
	hint := ""
	switch e.Code {
	case http.StatusNotFound:
		hint = ": the repository does not have this blob"
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = ": the repository refused the token (see --token-file)"
	}
	return fmt.Sprintf("repository answered %d %s for %s%s", e.Code, http.StatusText(e.Code), e.Digest, hint)
}

// Client downloads blobs.
type Client struct {
	// BaseURL is the repository, e.g. http://datarepository.team-a.svc:8080;
	// blobs are at BaseURL/v1/blobs/DIGEST.
	BaseURL string
	// HTTP sends the requests. Nil means http.DefaultClient.
	HTTP *http.Client
	// TokenFile, when set, is a file holding a bearer token, read before
	// every request so that a rotated token is picked up.
	TokenFile string
	// IdleTimeout aborts a request that receives nothing (headers or
	// bytes) for this long. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxBytes caps a blob's size. Zero means no cap.
	MaxBytes int64
	// Tries is how many requests one Fetch makes as long as each one
	// makes progress. Zero means DefaultTries.
	Tries int
	// Pause waits before try number try (2, 3, ...). Nil means no pause.
	Pause func(ctx context.Context, try int) error
	// OnBytes, when set, is told about every chunk received.
	OnBytes func(n int)
}

// Result describes one Fetch.
type Result struct {
	// Requests is how many requests were sent.
	Requests int
	// RangeRequests is how many of them resumed a partial download.
	RangeRequests int
	// Bytes is how many body bytes were received.
	Bytes int64
}

// Fetch makes HEX+SuffixVerified in staging hold the blob with digest
// (sha256:HEX), its content checked against the digest, and returns that
// file's name. An interrupted download leaves HEX+SuffixPartial (and the
// ETag beside it) for the next Fetch to resume; a download whose digest
// does not match is deleted.
func (c *Client) Fetch(ctx context.Context, staging *os.Root, digest string) (string, Result, error) {
	var res Result
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexDigest) != 64 || strings.Trim(hexDigest, "0123456789abcdef") != "" {
		return "", res, fmt.Errorf("%w: %q", ErrBadDigest, digest)
	}
	verified := hexDigest + SuffixVerified
	if info, err := staging.Lstat(verified); err == nil && info.Mode().IsRegular() {
		return verified, res, nil
	}
	tries := c.Tries
	if tries <= 0 {
		tries = DefaultTries
	}
	for try := 1; ; try++ {
		if try > 1 && c.Pause != nil {
			if err := c.Pause(ctx, try); err != nil {
				return "", res, err
			}
		}
		progress, err := c.try(ctx, staging, digest, hexDigest, &res)
		if err == nil {
			return verified, res, nil
		}
		if progress == 0 || try >= tries || !retryable(err) || ctx.Err() != nil {
			return "", res, err
		}
	}
}

func retryable(err error) bool {
	var se *StatusError
	return !errors.As(err, &se) && !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrTooLarge)
}

// try sends one request and appends what it gets to the partial file. It
// returns how many body bytes arrived.
func (c *Client) try(ctx context.Context, staging *os.Root, digest, hexDigest string, res *Result) (received int64, err error) {
	partial, etagName := hexDigest+SuffixPartial, hexDigest+SuffixETag
	f, err := staging.OpenFile(partial, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open staging file: %w", err)
	}
	defer f.Close()
	defer func() {
		// Leave no empty partial file behind a failed request.
		if err == nil {
			return
		}
		if info, serr := f.Stat(); serr == nil && info.Size() == 0 {
			_ = staging.Remove(partial)
			_ = staging.Remove(etagName)
		}
	}()
	// The digest covers the whole blob: hash what an earlier try kept.
	sum := sha256.New()
	offset, err := io.Copy(sum, f)
	if err != nil {
		return 0, fmt.Errorf("read staging file: %w", err)
	}
	etag := ""
	if offset > 0 {
		if b, err := staging.ReadFile(etagName); err == nil {
			etag = string(b)
		}
	}

	idle := c.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(idle, func() { cancel(fmt.Errorf("%w: nothing received for %s", ErrIdle, idle)) })
	defer timer.Stop()

	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/v1/blobs/"+digest, nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	if c.TokenFile != "" {
		token, err := readToken(c.TokenFile)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if etag != "" {
			req.Header.Set("If-Range", etag)
		}
		res.RangeRequests++
	}
	res.Requests++
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("request %s: %w", digest, causeOf(reqCtx, err))
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 { // the repository sent the whole blob again
			if err := restart(f, sum); err != nil {
				return 0, err
			}
			offset = 0
		}
	case http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != offset {
			_ = restart(f, sum)
			return 0, fmt.Errorf("repository answered a resume at byte %d with Content-Range %q; starting over", offset, resp.Header.Get("Content-Range"))
		}
		if c.MaxBytes > 0 && total > c.MaxBytes {
			return 0, c.discard(staging, hexDigest, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, total, c.MaxBytes))
		}
	case http.StatusRequestedRangeNotSatisfiable:
		_ = restart(f, sum)
		return 0, fmt.Errorf("repository refused to resume %s at byte %d; starting over", digest, offset)
	default:
		return 0, &StatusError{Digest: digest, Code: resp.StatusCode}
	}
	if offset == 0 {
		c.saveETag(staging, etagName, resp.Header.Get("ETag"))
	}
	if c.MaxBytes > 0 && resp.ContentLength > 0 && offset+resp.ContentLength > c.MaxBytes {
		return 0, c.discard(staging, hexDigest, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, offset+resp.ContentLength, c.MaxBytes))
	}

	var body io.Reader = &progressReader{r: resp.Body, timer: timer, idle: idle, onBytes: c.OnBytes}
	if c.MaxBytes > 0 {
		body = io.LimitReader(body, c.MaxBytes-offset+1)
	}
	n, err := io.Copy(io.MultiWriter(f, sum), body)
	res.Bytes += n
	if c.MaxBytes > 0 && offset+n > c.MaxBytes {
		return n, c.discard(staging, hexDigest, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.MaxBytes))
	}
	if err != nil {
		return n, fmt.Errorf("download of %s interrupted after %d bytes (kept for a resume): %w", digest, offset+n, causeOf(reqCtx, err))
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != hexDigest {
		return n, c.discard(staging, hexDigest, fmt.Errorf("%w: the repository sent %d bytes whose digest is sha256:%s, not %s; discarded", ErrDigestMismatch, offset+n, got, digest))
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("close staging file: %w", err)
	}
	if err := staging.Rename(partial, hexDigest+SuffixVerified); err != nil {
		return n, fmt.Errorf("keep verified blob: %w", err)
	}
	_ = staging.Remove(etagName)
	return n, nil
}

// discard deletes a download that can never verify and returns err.
func (c *Client) discard(staging *os.Root, hexDigest string, err error) error {
	for _, name := range []string{hexDigest + SuffixPartial, hexDigest + SuffixETag} {
		if rerr := staging.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return errors.Join(err, fmt.Errorf("remove %s: %w", name, rerr))
		}
	}
	return err
}

// saveETag keeps a strong ETag for If-Range. Weak ones cannot be used there.
func (c *Client) saveETag(staging *os.Root, name, etag string) {
	if etag == "" || strings.HasPrefix(etag, "W/") || len(etag) > 256 {
		_ = staging.Remove(name)
		return
	}
	_ = staging.WriteFile(name, []byte(etag), 0o600)
}

func restart(f *os.File, sum hash.Hash) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncate staging file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind staging file: %w", err)
	}
	sum.Reset()
	return nil
}

// causeOf prefers why the request's context ended (a stall) over the
// generic "context canceled" the transport reports.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrIdle) {
		return cause
	}
	return err
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", -1).
func parseContentRange(v string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("content range %q: want bytes START-END/TOTAL", v)
	}
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("content range %q: want bytes START-END/TOTAL", v)
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content range %q: want bytes START-END/TOTAL", v)
	}
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	total = -1
	var err3 error
	if size != "*" {
		total, err3 = strconv.ParseInt(size, 10, 64)
	}
	if err := errors.Join(err1, err2, err3); err != nil || start < 0 || end < start || (total >= 0 && end >= total) {
		return 0, 0, fmt.Errorf("content range %q: want bytes START-END/TOTAL", v)
	}
	return start, total, nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, "\r\n") {
		return "", fmt.Errorf("token file %s must hold one non-empty line", path)
	}
	return token, nil
}

// progressReader pushes the stall deadline back on every chunk.
type progressReader struct {
	r       io.Reader
	timer   *time.Timer
	idle    time.Duration
	onBytes func(int)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.timer.Reset(p.idle)
		if p.onBytes != nil {
			p.onBytes(n)
		}
	}
	return n, err
}
