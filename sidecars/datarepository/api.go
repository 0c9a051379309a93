package datarepository

import (
	"strings"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// The HTTP API's paths.
const (
	// PathSources lists the sources (GET).
	PathSources = "/v1/sources"
	// PathBlobs + DIGEST is a version's canonical tar (GET, HEAD; Range).
	PathBlobs = "/v1/blobs/"
	// BlobContentType is the Content-Type of blobs.
	BlobContentType = "application/x-tar"
)

// SourcePath is the path of one source (GET).
func SourcePath(name string) string { return PathSources + "/" + name }

// SyncPath is where a POST asks for a check now (answer 202).
func SyncPath(name string) string { return SourcePath(name) + "/sync" }

// PinsPath is where a PUT of a PinsRequest replaces the pins.
func PinsPath(name string) string { return SourcePath(name) + "/pins" }

// BlobPath is the path of a blob.
func BlobPath(digest string) string { return PathBlobs + digest }

// Version is one version of a source.
type Version struct {
	// ID is the version id: UTC creation time and the first 12 hex digits
	// of the digest, e.g. 20261121t150405z-abcdef012345. Ids of a source
	// sort chronologically.
	ID string `json:"id"`
	// Digest is sha256:HEX of the canonical tar.
	Digest string `json:"digest"`
	// Size is the canonical tar's size in bytes.
	Size int64 `json:"size"`
	// Created is when the version was made (RFC 3339, UTC).
	Created time.Time `json:"created"`
	// Revision is what the source called the content: a commit id for
	// git, an ETag or Last-Modified (or the body's digest) for http, the
	// content digest for dir.
	Revision string `json:"revision"`
}

// SourceStatus is a source and its versions.
type SourceStatus struct {
	Name string `json:"name"`
	// Kind is git, http or dir.
	Kind string `json:"kind"`
	// Location is the declared location, credentials redacted.
	Location string `json:"location"`
	// Versions are sorted by id, oldest first; the last is the newest.
	Versions []Version `json:"versions"`
	// Pins are the pinned version ids, sorted.
	Pins []string `json:"pins"`
	// LastSync is when the last check ended, successful or not.
	LastSync *time.Time `json:"lastSync,omitempty"`
	// LastSuccess is when the last successful check ended.
	LastSuccess *time.Time `json:"lastSuccess,omitempty"`
	// LastError is why the last check failed, empty after a success. It
	// holds no credentials.
	LastError string `json:"lastError,omitempty"`
}

// Latest is the newest version, or nil when there is none yet.
func (s SourceStatus) Latest() *Version {
	if len(s.Versions) == 0 {
		return nil
	}
	return &s.Versions[len(s.Versions)-1]
}

// Version finds a version by id.
func (s SourceStatus) Version(id string) (Version, bool) {
	for _, v := range s.Versions {
		if v.ID == id {
			return v, true
		}
	}
	return Version{}, false
}

// SourceList is the answer of GET /v1/sources.
type SourceList struct {
	// Sources are sorted by name.
	Sources []SourceStatus `json:"sources"`
}

// PinsRequest is the body of PUT /v1/sources/NAME/pins: the complete new
// set of pinned version ids (an empty list unpins all).
type PinsRequest struct {
	Versions []string `json:"versions"`
}

// MaxPins bounds a PinsRequest.
const MaxPins = 64

// SyncResponse is the answer of POST /v1/sources/NAME/sync.
type SyncResponse struct {
	Source string `json:"source"`
	// Queued is true: a check will start as soon as the source is idle.
	Queued bool `json:"queued"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// redactLocation hides credentials in a location for display. A git
// location's #ref is kept: it is not secret and says what is followed.
func redactLocation(kind, location string) string {
	if kind == "dir" {
		return location
	}
	u, ref, hasRef := strings.Cut(location, "#")
	shown := spec.RedactURL(u)
	if hasRef && kind == "git" {
		shown += "#" + ref
	}
	return shown
}
