package fetch

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/canonical"
	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
	"github.com/autocrane/autocrane/spec"
)

// HTTP defaults.
const (
	// DefaultMaxBodyBytes bounds a downloaded body: 1 GiB.
	DefaultMaxBodyBytes = 1 << 30
	// MaxResponseHeaderBytes bounds a response's headers.
	MaxResponseHeaderBytes = 64 << 10
	// maxRedirects bounds same-host redirects.
	maxRedirects = 5
)

// ErrCrossHostRedirect is returned when a source redirects to another
// scheme, host or port.
var ErrCrossHostRedirect = errors.New("redirect to another host refused")

// NewTransport is the transport HTTP sources share: bounded headers, no
// transparent decompression (the bytes are the content), proxies from the
// environment.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  60 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		DisableCompression:     true,
	}
}

// HTTP follows a file or archive at an http(s) URL. Archives (.tar, .tar.gz,
// .tgz) are unpacked into the version; any other file becomes a version
// holding that one file under its base name.
type HTTP struct {
	// URL is the declared location.
	URL string
	// AllowInsecure lets this source use http://.
	AllowInsecure bool
	// Transport carries the requests. Nil means a NewTransport of its own.
	Transport http.RoundTripper
	// Credentials returns the source's credentials, read at each check.
	Credentials func() (Credentials, error)
	// MaxBodyBytes bounds the body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// SpoolDir holds the downloaded body and unpacked contents meanwhile.
	SpoolDir string
	// Limits bound the version.
	Limits canonical.Limits
}

// Fetch sends a GET, conditional on the ETag and Last-Modified recorded in
// prev; a 304 means unchanged.
func (h *HTTP) Fetch(ctx context.Context, prev store.Origin) (*Result, error) {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("http location %q: must be an http(s) URL without userinfo", cut(spec.RedactURL(h.URL)))
	}
	if u.Scheme == "http" && !h.AllowInsecure {
		return nil, errors.New("http:// is plaintext; allow it for this source with --allow-insecure, or use https://")
	}
	name, archive, err := httpFileName(u)
	if err != nil {
		return nil, err
	}
	creds := Credentials{}
	if h.Credentials != nil {
		if creds, err = h.Credentials(); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if a := creds.Authorization(); a != "" {
		req.Header.Set("Authorization", a)
	}
	if prev.Location == h.URL {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := h.client(u).Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %s", cut(spec.RedactURL(h.URL)), creds.Redact(urlErrorReason(err)))
	}
	defer resp.Body.Close()
	origin := store.Origin{Location: h.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	switch {
	case resp.StatusCode == http.StatusNotModified && prev.Location == h.URL && (prev.ETag != "" || prev.LastModified != ""):
		// A 304 may omit the validators; the recorded ones still hold.
		origin.ETag, origin.LastModified = prev.ETag, prev.LastModified
		return &Result{Unchanged: true, Origin: origin, Revision: prev.Revision}, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: HTTP %s", cut(spec.RedactURL(h.URL)), resp.Status)
	}
	return h.download(resp, origin, name, archive)
}

// client refuses redirects that leave the original scheme, host and port,
// so credentials never reach another host.
func (h *HTTP) client(orig *url.URL) *http.Client {
	transport := h.Transport
	if transport == nil {
		transport = NewTransport()
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != orig.Scheme || req.URL.Host != orig.Host {
				return ErrCrossHostRedirect
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return nil
		},
	}
}

// urlErrorReason is a transport error without the URL (which the caller
// prints redacted).
func urlErrorReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, ErrCrossHostRedirect) {
			return ErrCrossHostRedirect.Error()
		}
		return ue.Err.Error()
	}
	return err.Error()
}

// httpFileName is the file's base name and whether it is an archive.
func httpFileName(u *url.URL) (string, bool, error) {
	base := path.Base(u.Path)
	if u.Path == "" || strings.HasSuffix(u.Path, "/") || base == "/" || base == "." {
		return "", false, fmt.Errorf("http location %q names no file", cut(spec.RedactURL(u.String())))
	}
	if _, err := canonical.CleanPath(base); err != nil {
		return "", false, fmt.Errorf("http location: file name: %w", err)
	}
	lower := strings.ToLower(base)
	archive := strings.HasSuffix(lower, ".tar") || strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz")
	return base, archive, nil
}

func (h *HTTP) download(resp *http.Response, origin store.Origin, name string, archive bool) (*Result, error) {
	maxBody := h.MaxBodyBytes
	if maxBody == 0 {
		maxBody = DefaultMaxBodyBytes
	}
	if resp.ContentLength > maxBody {
		return nil, fmt.Errorf("body of %d bytes is larger than the limit of %d", resp.ContentLength, maxBody)
	}
	res := &Result{Origin: origin}
	body, err := h.spool()
	if err != nil {
		return nil, err
	}
	res.onClose(func() { body.Close(); os.Remove(body.Name()) })
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(body, sum), io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		res.Close()
		return nil, fmt.Errorf("read body: %w", err)
	}
	if n > maxBody {
		res.Close()
		return nil, fmt.Errorf("body larger than the limit of %d bytes", maxBody)
	}
	res.Revision = origin.ETag
	if res.Revision == "" {
		res.Revision = origin.LastModified
	}
	if res.Revision == "" {
		res.Revision = "sha256:" + hex.EncodeToString(sum.Sum(nil))
	}
	if !archive {
		tree := canonical.NewTree[canonical.Span](h.Limits)
		if err := tree.AddFile(name, n, false, canonical.Span{Length: n}); err != nil {
			res.Close()
			return nil, err
		}
		res.Write = func(w io.Writer) error { return tree.Write(w, canonical.SpoolOpener(body)) }
		return res, nil
	}
	res.Write = func(w io.Writer) error { return h.writeArchive(body, name, w) }
	return res, nil
}

// writeArchive unpacks the downloaded archive into a second spool and
// writes its canonical tar.
func (h *HTTP) writeArchive(body *os.File, name string, w io.Writer) error {
	var r io.Reader = io.NewSectionReader(body, 0, 1<<62)
	if lower := strings.ToLower(name); strings.HasSuffix(lower, ".gz") || strings.HasSuffix(lower, ".tgz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("archive %s: %w", name, err)
		}
		defer gz.Close()
		r = gz
	}
	contents, err := h.spool()
	if err != nil {
		return err
	}
	defer func() { contents.Close(); os.Remove(contents.Name()) }()
	tree, err := canonical.ReadTar(r, contents, h.Limits)
	if err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return tree.Write(w, canonical.SpoolOpener(contents))
}

func (h *HTTP) spool() (*os.File, error) {
	if err := os.MkdirAll(h.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool directory: %w", err)
	}
	f, err := os.CreateTemp(h.SpoolDir, "http-*")
	if err != nil {
		return nil, fmt.Errorf("create spool file: %w", err)
	}
	return f, nil
}

// Every kind is a Fetcher.
var (
	_ Fetcher = (*HTTP)(nil)
	_ Fetcher = (*Git)(nil)
	_ Fetcher = (*Dir)(nil)
)
