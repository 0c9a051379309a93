package datarollout

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestStateRoundTrip(t *testing.T) {
	st := State{
		Line:     testLine,
		LKG:      lkg(ver(2)),
		Previous: lkg(ver(1)),
		Rollout:  rolling(ver(4), map[string]GroupProgress{webGroup.Key: at(1, t0), jobsGroup.Key: {Owner: "ReplicaSet/jobs-77aa", Wave: 3, Requested: t0, Done: true}}),
		Bad:      []BadVersion{{Version: ver(3), At: t0, Reason: "pod web-1 went to error on version v3"}},
	}
	data, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseState(data, testLine)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	st.Schema = stateSchema
	if diff := cmp.Diff(st, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	again, _ := back.Marshal()
	if again != data {
		t.Errorf("encoding is not stable:\n%s\n%s", data, again)
	}
	if got := back.Pins(); !cmp.Equal(got, []string{"v1", "v2", "v4"}) {
		t.Errorf("pins %v", got)
	}
}

func TestParseStateRejects(t *testing.T) {
	good, _ := State{Line: testLine, LKG: lkg(ver(1))}.Marshal()
	tests := map[string]struct {
		data string
		line Line
		want string
	}{
		"another line":      {data: good, line: Line{Namespace: "team-b", StoreURL: testLine.StoreURL, Source: "models"}, want: "is for line team-a/models"},
		"an unknown schema": {data: strings.Replace(good, `"schema": 1`, `"schema": 2`, 1), line: testLine, want: "schema 2"},
		"an unknown field":  {data: strings.Replace(good, `"schema": 1`, `"schema": 1, "extra": true`, 1), line: testLine, want: "unknown field"},
		"a bad version id":  {data: strings.Replace(good, `"id": "v1"`, `"id": "V1/../x"`, 1), line: testLine, want: "version id"},
		"a bad digest":      {data: strings.Replace(good, `"digest": "sha256:`, `"digest": "md5:`, 1), line: testLine, want: "digest"},
		"trailing data":     {data: good + "{}", line: testLine, want: "data after"},
		"not JSON":          {data: "lkg: v1", line: testLine, want: "decode state"},
		"a wave out of range": {
			data: func() string {
				s, _ := State{Line: testLine, Rollout: rolling(ver(2), map[string]GroupProgress{"k": {Wave: 99}})}.Marshal()
				return s
			}(),
			line: testLine, want: "wave 99 out of range",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseState(tc.data, tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseControl(t *testing.T) {
	tests := map[string]struct {
		data    map[string]string
		want    Control
		wantErr string
	}{
		"nothing":               {},
		"paused":                {data: map[string]string{KeyPaused: "true"}, want: Control{Paused: true}},
		"not paused":            {data: map[string]string{KeyPaused: "false"}},
		"a typo is an error":    {data: map[string]string{KeyPaused: "yes"}, wantErr: `paused is "yes": want true or false`},
		"rejects, deduplicated": {data: map[string]string{KeyReject: " v2, v3 ,v2"}, want: Control{Reject: []string{"v2", "v3"}}},
		"an invalid reject":     {data: map[string]string{KeyReject: "v2,,v3"}, wantErr: "reject: version id"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseControl(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLineName(t *testing.T) {
	a := testLine.Name()
	if msgs := validation.IsDNS1123Label(a); len(msgs) > 0 {
		t.Errorf("%q is not a DNS label: %v", a, msgs)
	}
	if a != testLine.Name() {
		t.Error("the name is not stable")
	}
	for _, other := range []Line{
		{Namespace: "team-b", StoreURL: testLine.StoreURL, Source: testLine.Source},
		{Namespace: testLine.Namespace, StoreURL: testLine.StoreURL + "/x", Source: testLine.Source},
		{Namespace: testLine.Namespace, StoreURL: testLine.StoreURL, Source: "other"},
		// The separator keeps field boundaries apart.
		{Namespace: testLine.Namespace + "\x00" + testLine.StoreURL, StoreURL: "", Source: testLine.Source},
	} {
		if other.Name() == a {
			t.Errorf("%v has the same name as %v", other, testLine)
		}
	}
}

func TestEmptyState(t *testing.T) {
	if !(State{Line: testLine}).Empty() {
		t.Error("a state with only its line is not empty")
	}
	if (State{Bad: []BadVersion{{Version: ver(1), At: time.Now()}}}).Empty() {
		t.Error("a state with a bad version is empty")
	}
}
