package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	"github.com/google/go-cmp/cmp"
)

var optedIn = spec.Namespace{Name: "default", Labels: map[string]string{spec.LabelInject: spec.InjectEnabled}}

// at returns the value at a path of keys and list indexes in a JSON object.
func at(t *testing.T, doc []byte, path ...any) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func TestInjectPodJSON(t *testing.T) {
	healthz := `{"metadata":{"annotations":{"healthz.autocrane.io/min-ready-seconds":"5"}}` +
		`,"spec":{"containers":[{"name":"app","image":"app:1","future":{"x":1}}],"futureSpec":true}` +
		`,"status":{"futureStatus":"s"}}`
	cases := map[string]struct {
		raw         string
		ns          spec.Namespace
		wantOutcome injector.Outcome
		// wantSame: the result is raw itself.
		wantSame bool
		check    func(t *testing.T, out []byte)
	}{
		"unknown fields of the pod, a container and the status stay": {
			raw:         healthz,
			ns:          optedIn,
			wantOutcome: injector.Injected,
			check: func(t *testing.T, out []byte) {
				if got := at(t, out, "spec", "containers", 0, "future", "x"); got != 1.0 {
					t.Errorf("spec.containers[0].future.x = %v, want 1", got)
				}
				if got := at(t, out, "spec", "futureSpec"); got != true {
					t.Errorf("spec.futureSpec = %v, want true", got)
				}
				if got := at(t, out, "status", "futureStatus"); got != "s" {
					t.Errorf("status.futureStatus = %v, want s", got)
				}
				if got := at(t, out, "spec", "containers", 1, "name"); got != injector.ContainerWatchdogHealthz {
					t.Errorf("spec.containers[1].name = %v, want the canary sidecar", got)
				}
			},
		},
		"a template without spec gets one": {
			raw:         `{"metadata":{"annotations":{"healthz.autocrane.io/min-ready-seconds":"5"}}}`,
			ns:          optedIn,
			wantOutcome: injector.Injected,
			check: func(t *testing.T, out []byte) {
				if got := at(t, out, "spec", "containers", 0, "name"); got != injector.ContainerWatchdogHealthz {
					t.Errorf("spec.containers[0].name = %v, want the canary sidecar", got)
				}
			},
		},
		"a namespace that is not opted in skips the pod": {
			raw:         healthz,
			ns:          spec.Namespace{Name: "default", Labels: map[string]string{spec.LabelInject: spec.InjectDisabled}},
			wantOutcome: injector.Skipped,
			wantSame:    true,
		},
		"a pod that asks for nothing is skipped": {
			raw:         `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`,
			ns:          optedIn,
			wantOutcome: injector.Skipped,
			wantSame:    true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, outcome, err := InjectPodJSON([]byte(tc.raw), tc.ns, injector.DefaultConfig())
			if err != nil {
				t.Fatalf("InjectPodJSON: %v", err)
			}
			if outcome != tc.wantOutcome {
				t.Errorf("outcome = %q, want %q", outcome, tc.wantOutcome)
			}
			if tc.wantSame && string(out) != tc.raw {
				t.Errorf("out = %s, want raw unchanged", out)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
			if outcome != injector.Injected {
				return
			}
			again, outcome, err := InjectPodJSON(out, tc.ns, injector.DefaultConfig())
			if err != nil || outcome != injector.Unchanged {
				t.Fatalf("second pass: outcome %q, error %v; want unchanged", outcome, err)
			}
			if diff := cmp.Diff(string(out), string(again)); diff != "" {
				t.Errorf("second pass changed the pod (-first +second):\n%s", diff)
			}
		})
	}
}

func TestInjectPodJSONInvalid(t *testing.T) {
	raw := `{"metadata":{"annotations":{"healthz.autocrane.io/always-healthy-after-seconds":"5"}},"spec":{"containers":[{"name":"app"}]}}`
	_, _, err := InjectPodJSON([]byte(raw), optedIn, injector.DefaultConfig())
	var inv *injector.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err = %v, want an *injector.InvalidError", err)
	}
	want := "metadata.annotations[healthz.autocrane.io/min-ready-seconds]: Required value: healthz.autocrane.io/always-healthy-after-seconds only applies to the canary sidecar, which healthz.autocrane.io/min-ready-seconds turns on"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestInjectPodJSONMovedEntries covers a pod injected before in classic
// mode, to which a container was appended after the injected sidecar, now
// injected in native mode: the classic sidecar goes, and the appended
// container moves up one index. The webhook's index-by-index patch would
// leave that container's unknown field behind; InjectPodJSON must either
// keep it on the right container or refuse.
func TestInjectPodJSONMovedEntries(t *testing.T) {
	classic := injector.DefaultConfig()
	classic.SidecarMode = spec.SidecarClassic
	raw := `{"metadata":{"annotations":{"store.autocrane.io/url":"http://repo","data.autocrane.io/m":"m"}},"spec":{"containers":[{"name":"app","image":"app:1"}]}}`
	first, _, err := InjectPodJSON([]byte(raw), optedIn, classic)
	if err != nil {
		t.Fatal(err)
	}
	var pod map[string]any
	if err := json.Unmarshal(first, &pod); err != nil {
		t.Fatal(err)
	}
	podSpec := pod["spec"].(map[string]any)
	podSpec["containers"] = append(podSpec["containers"].([]any), map[string]any{"name": "late", "image": "late:1", "future": "keep"})
	edited, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}

	out, _, err := InjectPodJSON(edited, optedIn, injector.DefaultConfig())
	if err != nil {
		const want = "injecting would lose or move fields that AutoCrane's Kubernetes types do not know: /spec/containers/name=late/future"
		t.Logf("refused: %v", err)
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error = %v, want one that starts with %q", err, want)
		}
		return
	}
	for i, c := range at(t, out, "spec", "containers").([]any) {
		c := c.(map[string]any)
		if (c["name"] == "late") != (c["future"] == "keep") {
			t.Errorf("containers[%d] = %v: the unknown field is not on the late container", i, c)
		}
	}
}
