package datarepository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/autocrane/autocrane/spec"
)

// maxClientJSONBytes bounds an API answer the client decodes.
const maxClientJSONBytes = 16 << 20

// Client talks to a data repository. The zero HTTP uses
// http.DefaultClient; set one with a timeout for API calls.
type Client struct {
	// BaseURL is the repository, e.g. http://datarepository.team-a.svc:9790.
	BaseURL string
	// HTTP sends the requests. Nil means http.DefaultClient.
	HTTP *http.Client
	// Token, when set, is sent as "Authorization: Bearer TOKEN".
	Token string
}

// APIError is an answer other than the expected status.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the repository's error text.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("data repository: HTTP %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Message)
}

// IsNotFound reports whether err is a 404 from the repository: an unknown
// source, version or blob.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// Sources lists every source with its versions, sorted by name.
func (c *Client) Sources(ctx context.Context) ([]SourceStatus, error) {
	var list SourceList
	if err := c.do(ctx, http.MethodGet, PathSources, nil, http.StatusOK, &list); err != nil {
		return nil, err
	}
	return list.Sources, nil
}

// Source returns one source. An unknown source is an error for which
// IsNotFound is true.
func (c *Client) Source(ctx context.Context, name string) (SourceStatus, error) {
	var s SourceStatus
	err := c.do(ctx, http.MethodGet, SourcePath(url.PathEscape(name)), nil, http.StatusOK, &s)
	return s, err
}

// Sync asks for a check of the source now (for a push webhook). It returns
// when the check is queued, not when it is done.
func (c *Client) Sync(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodPost, SyncPath(url.PathEscape(name)), nil, http.StatusAccepted, &SyncResponse{})
}

// SetPins replaces the source's pinned versions with ids (nil or empty
// unpins all) and returns the source as it is afterwards. Pinned versions
// are never collected. Every id must be a current version; otherwise the
// error is a 404 naming the unknown ids.
func (c *Client) SetPins(ctx context.Context, name string, ids []string) (SourceStatus, error) {
	if ids == nil {
		ids = []string{}
	}
	body, err := json.Marshal(PinsRequest{Versions: ids})
	if err != nil {
		return SourceStatus{}, fmt.Errorf("encode pins: %w", err)
	}
	var s SourceStatus
	err = c.do(ctx, http.MethodPut, PinsPath(url.PathEscape(name)), body, http.StatusOK, &s)
	return s, err
}

// BlobURL is the URL of a blob, for a downloader that handles Range itself
// (send the Token as a bearer token when one is set).
func (c *Client) BlobURL(digest string) string {
	return strings.TrimRight(c.BaseURL, "/") + BlobPath(url.PathEscape(digest))
}

// OpenBlob starts a download of a blob at offset (0 for all of it; more to
// resume). It returns the body, from offset on, and the blob's total size.
// The caller closes the body and should check the sha256 of the whole blob.
func (c *Client) OpenBlob(ctx context.Context, digest string, offset int64) (io.ReadCloser, int64, error) {
	if err := spec.ValidateDigest(digest); err != nil {
		return nil, 0, err
	}
	req, err := c.request(ctx, http.MethodGet, c.BlobURL(digest), nil)
	if err != nil {
		return nil, 0, err
	}
	want := http.StatusOK
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		req.Header.Set("If-Range", `"`+digest+`"`)
		want = http.StatusPartialContent
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("data repository: GET blob %s: %w", digest, err)
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, 0, readAPIError(resp)
	}
	size := resp.ContentLength
	if offset > 0 {
		size = totalFromContentRange(resp.Header.Get("Content-Range"))
	}
	return resp.Body, size, nil
}

// totalFromContentRange reads the total of "bytes A-B/TOTAL", or -1.
func totalFromContentRange(v string) int64 {
	_, total, ok := strings.Cut(v, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) request(ctx context.Context, method, u string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("data repository: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	req, err := c.request(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("data repository: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return readAPIError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxClientJSONBytes+1))
	if err != nil {
		return fmt.Errorf("data repository: %s %s: read answer: %w", method, path, err)
	}
	if len(data) > maxClientJSONBytes {
		return fmt.Errorf("data repository: %s %s: answer larger than %d bytes", method, path, maxClientJSONBytes)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("data repository: %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e ErrorResponse
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &APIError{StatusCode: resp.StatusCode, Message: spec.SanitizeMessage(msg)}
}
