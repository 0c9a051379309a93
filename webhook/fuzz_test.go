package webhook

import (
	"encoding/json"
	"net/http"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// FuzzHandle feeds arbitrary objects to the handler. Whatever the input, it
// must answer with a known code and never panic. For a pod as the API server
// sends it (canonical JSON), the patch must apply to the raw object and a
// second pass over the result must change nothing.
func FuzzHandle(f *testing.F) {
	for _, raw := range []string{dataPod, futurePod, plainPod, disabledPod, badURLPod, manyBadPod, canaryPod, forgedRecordPod, `{}`, `{"metadata":`} {
		f.Add("apps", raw)
		f.Add("plain", raw)
	}
	m, _ := newTestMutator(f, testNamespaces)
	// handle checks the answer to raw; with apply, it also applies the patch
	// and returns the patched object.
	handle := func(t *testing.T, ns, raw string, apply bool) ([]byte, bool) {
		req := podRequest(ns, raw)
		resp := m.Handle(t.Context(), req)
		if resp.Result == nil {
			t.Fatalf("no Result")
		}
		switch resp.Result.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnprocessableEntity:
		case http.StatusInternalServerError:
			if resp.Result.Message == "AutoCrane's pod mutator failed on request "+string(req.UID)+"; see the manager's log" {
				t.Fatalf("handler panicked on %s", raw)
			}
		default:
			t.Fatalf("unexpected code %d", resp.Result.Code)
		}
		if len(resp.Patches) == 0 || !apply {
			return nil, len(resp.Patches) > 0
		}
		if err := resp.Complete(req); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("DecodePatch: %v", err)
		}
		patched, err := p.Apply(req.Object.Raw)
		if err != nil {
			t.Fatalf("patch does not apply to %s: %v\n%s", raw, err, resp.Patch)
		}
		return patched, true
	}
	f.Fuzz(func(t *testing.T, ns, raw string) {
		handle(t, ns, raw, false)

		// The same pod, as the API server would serialize it.
		var pod corev1.Pod
		if utiljson.Unmarshal([]byte(raw), &pod) != nil {
			return
		}
		canonical, err := json.Marshal(&pod)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		patched, ok := handle(t, ns, string(canonical), true)
		if !ok {
			return
		}
		if again, ok := handle(t, ns, string(patched), true); ok {
			t.Fatalf("second pass over %s changed it again:\n%s", patched, again)
		}
	})
}
