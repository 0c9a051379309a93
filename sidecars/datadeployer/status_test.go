package datadeployer

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autocrane/autocrane/spec"
)

func TestStatusJSONAndDataStatus(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	since := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	tests := map[string]struct {
		in         DeploymentStatus
		wantJSON   string
		wantStatus string
	}{
		"live": {
			in: DeploymentStatus{Name: "models", State: spec.DataLive, Source: "models", Version: "v2", Digest: digest, Since: since,
				Requested: "models/v2/" + digest, Previous: "models/v1/sha256:" + strings.Repeat("cd", 32)},
			wantJSON: `{"name":"models","state":"live","source":"models","version":"v2","digest":"` + digest + `","since":"2026-02-03T04:05:06Z",` +
				`"requested":"models/v2/` + digest + `","previous":"models/v1/sha256:` + strings.Repeat("cd", 32) + `"}`,
			wantStatus: "live/v2/" + digest + "/2026-02-03T04:05:06Z/",
		},
		"first sync": {
			in:         DeploymentStatus{Name: "models", State: spec.DataSyncing, Requested: "models/v1/" + digest},
			wantJSON:   `{"name":"models","state":"syncing","requested":"models/v1/` + digest + `"}`,
			wantStatus: "syncing/-/-/-/",
		},
		"failed, old version live": {
			in: DeploymentStatus{Name: "models", State: spec.DataFailed, Version: "v1", Digest: digest, Since: since,
				Error: "download: repository answered 503", ConsecutiveFailures: 4, FailingSince: since},
			wantJSON: `{"name":"models","state":"failed","version":"v1","digest":"` + digest + `","since":"2026-02-03T04:05:06Z",` +
				`"error":"download: repository answered 503","consecutiveFailures":4,"failingSince":"2026-02-03T04:05:06Z"}`,
			wantStatus: "failed/v1/" + digest + "/2026-02-03T04:05:06Z/download: repository answered 503",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(tc.in)
			if err != nil || string(b) != tc.wantJSON {
				t.Fatalf("JSON = %s (%v)\nwant   %s", b, err, tc.wantJSON)
			}
			ds := tc.in.DataStatus()
			if got := ds.String(); got != tc.wantStatus {
				t.Fatalf("DataStatus = %q, want %q", got, tc.wantStatus)
			}
			back, err := spec.ParseDataStatus(ds.String())
			if err != nil || back.State != tc.in.State || back.Version != tc.in.Version || !back.Since.Equal(tc.in.Since) {
				t.Fatalf("ParseDataStatus = %+v, %v", back, err)
			}
			st, err := DecodeStatus(strings.NewReader(`{"ready":true,"deployments":[` + string(b) + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := st.Deployment("models"); !ok || got != tc.in {
				t.Fatalf("decoded %+v, want %+v", got, tc.in)
			}
		})
	}
}

func TestDecodeStatusRejectsUnknownState(t *testing.T) {
	_, err := DecodeStatus(strings.NewReader(`{"deployments":[{"name":"m","state":"lve"}]}`))
	if err == nil || err.Error() != `decode datadeployer status: deployment "m" has state "lve"` {
		t.Fatalf("err = %v", err)
	}
}
