package datarollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Repository is what the rollout needs of a data repository. The base URL
// is the line's store.autocrane.io/url.
type Repository interface {
	// Source lists a source's versions (oldest first) and its pins.
	Source(ctx context.Context, baseURL, source string) (Catalog, error)
	// Pin replaces the source's pinned versions with ids, so the
	// repository's garbage collection keeps them.
	Pin(ctx context.Context, baseURL, source string, ids []string) error
}

// The repository API's defaults.
const (
	// DefaultRepositoryTimeout bounds one repository request.
	DefaultRepositoryTimeout = 10 * time.Second
	// maxRepositoryBody bounds a repository answer: a source lists at most
	// a few hundred versions of about 200 bytes each.
	maxRepositoryBody = 4 << 20
	// maxVersions bounds the versions of one source the controller reads.
	maxVersions = 10000
	// maxPins is the repository's bound on a pin request.
	maxPins = 64
)

// HTTPRepository is Repository over the data repository's HTTP API:
// GET {url}/v1/sources/NAME and PUT {url}/v1/sources/NAME/pins. It follows
// no redirects, uses no proxy, and reads at most a few MiB per answer: the
// URL comes from users' annotations, so the controller must not be a
// general-purpose fetcher.
type HTTPRepository struct {
	client *http.Client
	// token, when set, gives the bearer token to send to a base URL ("" for
	// none). A store URL is chosen by namespace users, so a token must only
	// go to repositories the operator trusts.
	token func(baseURL string) string
}

// NewHTTPRepository builds an HTTPRepository. timeout bounds each request
// (0: DefaultRepositoryTimeout); token may be nil.
func NewHTTPRepository(timeout time.Duration, token func(baseURL string) string) *HTTPRepository {
	if timeout <= 0 {
		timeout = DefaultRepositoryTimeout
	}
	return &HTTPRepository{
		client: &http.Client{
			Timeout:       timeout,
			Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, MaxResponseHeaderBytes: 64 << 10},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		token: token,
	}
}

// sourceAnswer is the part of GET /v1/sources/NAME the controller reads.
type sourceAnswer struct {
	Name     string `json:"name"`
	Versions []struct {
		ID     string `json:"id"`
		Digest string `json:"digest"`
	} `json:"versions"`
	Pins []string `json:"pins"`
}

// Source implements Repository.
func (r *HTTPRepository) Source(ctx context.Context, baseURL, source string) (Catalog, error) {
	body, err := r.do(ctx, http.MethodGet, baseURL, "/v1/sources/"+url.PathEscape(source), nil)
	if err != nil {
		return Catalog{}, err
	}
	return decodeSource(body, source)
}

// decodeSource checks an answer of GET /v1/sources/NAME: every version must
// be valid, since versions end up in pod annotations.
func decodeSource(body []byte, source string) (Catalog, error) {
	var a sourceAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return Catalog{}, fmt.Errorf("data repository: decode source %s: %w", source, err)
	}
	if a.Name != "" && a.Name != source {
		return Catalog{}, fmt.Errorf("data repository: asked for source %s, got %q", source, truncate(a.Name))
	}
	if len(a.Versions) > maxVersions {
		return Catalog{}, fmt.Errorf("data repository: source %s lists %d versions, more than %d", source, len(a.Versions), maxVersions)
	}
	c := Catalog{Reachable: true, Versions: make([]Version, 0, len(a.Versions)), Pins: a.Pins}
	seen := make(map[string]bool, len(a.Versions))
	for _, v := range a.Versions {
		ver := Version{ID: v.ID, Digest: v.Digest}
		if err := ver.validate(); err != nil {
			return Catalog{}, fmt.Errorf("data repository: source %s: %w", source, err)
		}
		if seen[v.ID] {
			return Catalog{}, fmt.Errorf("data repository: source %s lists version %s twice", source, v.ID)
		}
		seen[v.ID] = true
		c.Versions = append(c.Versions, ver)
	}
	return c, nil
}

// Pin implements Repository.
func (r *HTTPRepository) Pin(ctx context.Context, baseURL, source string, ids []string) error {
	if len(ids) > maxPins {
		return fmt.Errorf("data repository: %d pins for source %s, more than %d", len(ids), source, maxPins)
	}
	if ids == nil {
		ids = []string{}
	}
	body, err := json.Marshal(struct {
		Versions []string `json:"versions"`
	}{ids})
	if err != nil {
		return fmt.Errorf("encode pins: %w", err)
	}
	_, err = r.do(ctx, http.MethodPut, baseURL, "/v1/sources/"+url.PathEscape(source)+"/pins", body)
	return err
}

// RepositoryError is an answer other than 200 from the repository.
type RepositoryError struct {
	StatusCode int
	// Message is the repository's error text, sanitized and bounded.
	Message string
}

func (e *RepositoryError) Error() string {
	return fmt.Sprintf("data repository: HTTP %d: %s", e.StatusCode, e.Message)
}

func (r *HTTPRepository) do(ctx context.Context, method, baseURL, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	target := strings.TrimRight(baseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("data repository: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "autocrane-data-rollout")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != nil {
		if tok := r.token(baseURL); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("data repository: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRepositoryBody+1))
	if err != nil {
		return nil, fmt.Errorf("data repository: %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &RepositoryError{StatusCode: resp.StatusCode, Message: truncate(msg)}
	}
	if len(data) > maxRepositoryBody {
		return nil, fmt.Errorf("data repository: %s %s: answer larger than %d bytes", method, path, maxRepositoryBody)
	}
	return data, nil
}

// truncate makes peer-controlled text safe for logs and errors.
func truncate(s string) string {
	const limit = 200
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}
