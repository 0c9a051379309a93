package webhook

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// lkg answers every data deployment fed from source "models" with one
// version: the data rollout controller's cache stands in here, as a value.
type lkg struct {
	version spec.DataRequest
	err     error
}

func (l lkg) InitialRequests(_ context.Context, _ string, pod spec.Pod) (map[string]spec.DataRequest, error) {
	if l.err != nil {
		return nil, l.err
	}
	out := map[string]spec.DataRequest{}
	for _, d := range pod.Deployments {
		if d.Source == l.version.Source {
			out[d.Name] = l.version
		}
	}
	return out, nil
}

var lkgModels = spec.DataRequest{Source: "models", ID: "v1", Digest: "sha256:" + strings.Repeat("ab", 32)}

const twoDataPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"data.autocrane.io/models":"models","data.autocrane.io/other":"other"%s}},` +
	`"spec":{"containers":[{"name":"app","image":"x"}]}}`

func TestMutatorWritesInitialRequests(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requester InitialRequester
		extra     string
		want      map[string]string
	}{
		{name: "the last known good version", requester: lkg{version: lkgModels},
			want: map[string]string{spec.PrefixDataRequest + "models": lkgModels.String()}},
		{name: "none without a requester", want: map[string]string{}},
		{name: "none when the cache fails: the pod is still admitted", requester: lkg{err: errors.New("cache not synced")}, want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewPodMutator(PodMutatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig(),
				Registerer: prometheus.NewPedanticRegistry(), InitialRequests: tc.requester})
			if err != nil {
				t.Fatal(err)
			}
			req := podRequest("apps", strings.Replace(twoDataPod, "%s", tc.extra, 1))
			resp := m.Handle(context.Background(), req)
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			pod := decode[corev1.Pod](t, applyPatch(t, req, resp))
			got := map[string]string{}
			for k, v := range pod.Annotations {
				if strings.HasPrefix(k, spec.PrefixDataRequest) {
					got[k] = v
					if !claimedByInjector(&pod, k) {
						t.Errorf("the injected record does not claim %s: %s", k, pod.Annotations[spec.AnnotationInjected])
					}
				}
			}
			if len(got) != len(tc.want) || got[spec.PrefixDataRequest+"models"] != tc.want[spec.PrefixDataRequest+"models"] {
				t.Errorf("requests = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestValidatorChecksInitialRequestsOnCreate(t *testing.T) {
	v, err := NewValidator(ValidatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig(),
		Registerer: prometheus.NewPedanticRegistry(), InitialRequests: lkg{version: lkgModels}})
	if err != nil {
		t.Fatal(err)
	}
	forged := spec.DataRequest{Source: "models", ID: "v9", Digest: lkgModels.Digest}
	for _, tc := range []struct {
		name, extra, wantErr string
	}{
		{name: "the last known good version is allowed", extra: `,"request.data.autocrane.io/models":"` + lkgModels.String() + `",` + claim("request.data.autocrane.io/models")},
		{name: "no request is allowed"},
		{name: "a request the record does not claim is the policy's to judge", extra: `,"request.data.autocrane.io/models":"` + forged.String() + `"`},
		{name: "a claimed request of another version is denied", extra: `,"request.data.autocrane.io/models":"` + forged.String() + `",` + claim("request.data.autocrane.io/models"),
			wantErr: `metadata.annotations[request.data.autocrane.io/models]: Forbidden: is AutoCrane's state: on a new pod whose injected record claims it, it may only be the last known good version AutoCrane gives it (` + lkgModels.String() + `)`},
		{name: "a claimed request without a version to give is denied", extra: `,"request.data.autocrane.io/other":"` + forged.String() + `",` + claim("request.data.autocrane.io/other"),
			wantErr: `metadata.annotations[request.data.autocrane.io/other]: Forbidden: is AutoCrane's state: on a new pod whose injected record claims it, it may only be the last known good version AutoCrane gives it (there is none for this data deployment); remove it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := validationRequest(admissionv1.Create, podGVK, "apps", strings.Replace(twoDataPod, "%s", tc.extra, 1), "")
			resp := v.Handle(context.Background(), req)
			if tc.wantErr == "" {
				if !resp.Allowed {
					t.Fatalf("denied: %v", resp.Result.Message)
				}
				return
			}
			if resp.Allowed || !strings.Contains(resp.Result.Message, tc.wantErr) {
				t.Fatalf("got allowed=%v %q, want a denial containing %q", resp.Allowed, resp.Result.Message, tc.wantErr)
			}
		})
	}
}

// claim is an injected-record annotation that claims key, as a forger
// would write it.
func claim(key string) string {
	return `"autocrane.io/injected":` + strconv.Quote(spec.Injected{Version: spec.InjectedVersion, Annotations: []string{key}}.String())
}
