package datadeployer

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// Status is the body of GET /status.
type Status struct {
	// Ready is true once every deployment has held its requested version
	// (what /readyz reports).
	Ready       bool               `json:"ready"`
	Deployments []DeploymentStatus `json:"deployments"`
}

// DeploymentStatus is one data deployment's status.
type DeploymentStatus struct {
	Name string `json:"name"`
	// State is syncing, live or failed (spec.DataState).
	State spec.DataState `json:"state"`
	// Source, Version and Digest are the version held: live at
	// LOCATION/NAME. Empty when none is.
	Source  string `json:"source,omitempty"`
	Version string `json:"version,omitempty"`
	Digest  string `json:"digest,omitempty"`
	// Since is when the held version went live, RFC 3339 UTC.
	Since time.Time `json:"since,omitzero"`
	// Requested is the request, SOURCE/VERSION/DIGEST; empty when there is
	// none (yet).
	Requested string `json:"requested,omitempty"`
	// Previous is the version kept on disk for a rollback without download,
	// SOURCE/VERSION/DIGEST.
	Previous string `json:"previous,omitempty"`
	// Error is the last error, sanitized (spec.SanitizeMessage); empty
	// once a sync succeeds.
	Error string `json:"error,omitempty"`
	// ConsecutiveFailures counts failed syncs since the last success or
	// the last new request; FailingSince is when the first of them ended.
	ConsecutiveFailures int       `json:"consecutiveFailures,omitempty"`
	FailingSince        time.Time `json:"failingSince,omitzero"`
}

// DataStatus converts the status into the value the controller writes to
// status.data.autocrane.io/NAME (format it with String).
func (s DeploymentStatus) DataStatus() spec.DataStatus {
	return spec.DataStatus{State: s.State, Version: s.Version, Digest: s.Digest, Since: s.Since, Message: s.Error}
}

// Deployment finds a deployment's status by name.
func (s Status) Deployment(name string) (DeploymentStatus, bool) {
	for _, d := range s.Deployments {
		if d.Name == name {
			return d, true
		}
	}
	return DeploymentStatus{}, false
}

// MaxStatusBody bounds a /status body that DecodeStatus accepts.
const MaxStatusBody = 1 << 20

// DecodeStatus reads a /status body, as the controller does.
func DecodeStatus(r io.Reader) (Status, error) {
	var s Status
	dec := json.NewDecoder(io.LimitReader(r, MaxStatusBody))
	if err := dec.Decode(&s); err != nil {
		return Status{}, fmt.Errorf("decode datadeployer status: %w", err)
	}
	for _, d := range s.Deployments {
		switch d.State {
		case spec.DataSyncing, spec.DataLive, spec.DataFailed:
		default:
			return Status{}, fmt.Errorf("decode datadeployer status: deployment %q has state %q", spec.SanitizeMessage(d.Name), spec.SanitizeMessage(string(d.State)))
		}
	}
	return s, nil
}
