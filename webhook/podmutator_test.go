package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// fakeNamespaces is an in-memory client.Reader that knows a few namespaces,
// as metadata only. It fails on anything but a v1/Namespace
// PartialObjectMetadata, so the tests also check how the handler reads.
type fakeNamespaces struct {
	namespaces map[string]metav1.ObjectMeta
	// err, when set, is returned by every Get.
	err error
	// panics makes Get panic.
	panics bool
}

var _ client.Reader = fakeNamespaces{}

func (f fakeNamespaces) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if f.panics {
		panic("fake reader panics")
	}
	if f.err != nil {
		return f.err
	}
	pom, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return errors.New("fakeNamespaces: want *metav1.PartialObjectMetadata, so the cache holds metadata only")
	}
	if gvk := pom.GroupVersionKind(); gvk != namespaceGVK {
		return errors.New("fakeNamespaces: want GVK v1/Namespace, got " + gvk.String())
	}
	meta, ok := f.namespaces[key.Name]
	if !ok || key.Namespace != "" {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, key.Name)
	}
	meta.DeepCopyInto(&pom.ObjectMeta)
	return nil
}

func (f fakeNamespaces) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("fakeNamespaces: List is not used by the handler")
}

// testNamespaces: "apps" is labelled enabled and names the data repository;
// "plain" has nothing; "bad-default" has an invalid default. kube-system is
// deliberately unknown: reading it would be an error.
var testNamespaces = fakeNamespaces{namespaces: map[string]metav1.ObjectMeta{
	"apps": {
		Name:        "apps",
		Labels:      map[string]string{spec.LabelInject: spec.InjectEnabled},
		Annotations: map[string]string{spec.KeyStoreURL: "http://repo.ns:8080"},
	},
	"plain": {Name: "plain"},
	"bad-default": {
		Name:        "bad-default",
		Labels:      map[string]string{spec.LabelInject: spec.InjectEnabled},
		Annotations: map[string]string{spec.KeyStoreURL: "ftp://y"},
	},
}}

// newTestMutator returns a PodMutator on a fresh registry.
func newTestMutator(t testing.TB, reader client.Reader) (*PodMutator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := NewPodMutator(PodMutatorOptions{Namespaces: reader, Config: injector.DefaultConfig(), Registerer: reg})
	if err != nil {
		t.Fatalf("NewPodMutator: %v", err)
	}
	return m, reg
}

// podRequest is a CREATE request for a pod in namespace ns.
func podRequest(ns, raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("0d7d4b8e-3c1a-4a0e-9a55-5b0f3b1f1a11"),
		Kind:      podGVK,
		Resource:  podGVR,
		Namespace: ns,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: []byte(raw)},
	}}
}

// applyPatch completes resp as admission.Webhook does and applies its JSON
// patch to raw, as the API server would.
func applyPatch(t testing.TB, req admission.Request, resp admission.Response) []byte {
	t.Helper()
	if err := resp.Complete(req); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if resp.UID != req.UID {
		t.Errorf("response UID = %q, want %q", resp.UID, req.UID)
	}
	if len(resp.Patch) == 0 {
		return req.Object.Raw
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("PatchType = %v, want JSONPatch", resp.PatchType)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("DecodePatch: %v", err)
	}
	out, err := p.Apply(req.Object.Raw)
	if err != nil {
		t.Fatalf("Apply: %v\npatch: %s", err, resp.Patch)
	}
	return out
}

func decode[T any](t testing.TB, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

// admissions is the value of one admissions_total series of m.
func admissions(m *PodMutator, result, reason string) float64 {
	return testutil.ToFloat64(m.metrics.admissions.WithLabelValues(result, reason))
}

// totalAdmissions sums every admissions_total series of reg.
func totalAdmissions(t testing.TB, reg *prometheus.Registry) (float64, uint64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var total float64
	var observed uint64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "autocrane_webhook_admissions_total":
				total += m.GetCounter().GetValue()
			case "autocrane_webhook_admission_duration_seconds":
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return total, observed
}

var quantity = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

const (
	// dataPod asks for data deployment "models" from source "models".
	dataPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","annotations":{"data.autocrane.io/models":"models"}},` +
		`"spec":{"containers":[{"name":"app","image":"x"}]}}`
	// futurePod is dataPod with fields k8s.io/api v0.37 does not know.
	futurePod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","annotations":{"data.autocrane.io/models":"models"}},` +
		`"spec":{"futureField":{"a":1},"containers":[{"name":"app","image":"x","futureContainerField":true}]}}`
	plainPod    = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"app","image":"x"}]}}`
	disabledPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","labels":{"autocrane.io/inject":"disabled"},` +
		`"annotations":{"data.autocrane.io/models":"models"}},"spec":{"containers":[{"name":"app","image":"x"}]}}`
	badURLPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","annotations":{"store.autocrane.io/url":"ftp://x"}},` +
		`"spec":{"containers":[{"name":"app","image":"x"}]}}`
	manyBadPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-0","annotations":{` +
		`"store.autocrane.io/url":"ftp://x","healthz.autocrane.io/min-ready-seconds":"soon","inject.autocrane.io/sidecar-mode":"sideways"}},` +
		`"spec":{"containers":[{"name":"app","image":"x"}]}}`
	// canaryPod asks for the watchdoghealthz canary sidecar only.
	canaryPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","annotations":{"healthz.autocrane.io/min-ready-seconds":"30"}},` +
		`"spec":{"containers":[{"name":"app","image":"x"}]}}`
	forgedRecordPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","annotations":{"autocrane.io/injected":"yes"}},` +
		`"spec":{"containers":[{"name":"app","image":"x"}]}}`
)

func TestHandle(t *testing.T) {
	tests := map[string]struct {
		reader    client.Reader
		req       admission.Request
		wantCode  int32
		wantAllow bool
		// wantStatusReason is the Status reason of a refusal.
		wantStatusReason metav1.StatusReason
		// wantMessage is the exact message of a refusal.
		wantMessage string
		// wantPatch says whether a patch comes back.
		wantPatch bool
		// check inspects the raw pod after the patch was applied.
		check func(t *testing.T, patched []byte)
		// wantResult and wantReason are the counted metric labels.
		wantResult, wantReason string
	}{
		"pod asking for data in a labelled namespace is patched with the datadeployer": {
			req:       podRequest("apps", dataPod),
			wantCode:  http.StatusOK,
			wantAllow: true,
			wantPatch: true,
			check: func(t *testing.T, patched []byte) {
				pod := decode[corev1.Pod](t, patched)
				want := mutated(t, "apps", dataPod)
				if diff := cmp.Diff(want, &pod, quantity); diff != "" {
					t.Errorf("patched pod differs from injector.Mutate's (-want +got):\n%s", diff)
				}
				if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{injector.ContainerDataDeployer}) {
					t.Errorf("init containers = %v, want [%s]", got, injector.ContainerDataDeployer)
				}
				if _, ok := pod.Annotations[spec.AnnotationInjected]; !ok {
					t.Errorf("annotation %s missing", spec.AnnotationInjected)
				}
			},
			wantResult: resultInjected, wantReason: reasonInjected,
		},
		"fields unknown to k8s.io/api survive the patch": {
			req:       podRequest("apps", futurePod),
			wantCode:  http.StatusOK,
			wantAllow: true,
			wantPatch: true,
			check: func(t *testing.T, patched []byte) {
				raw := decode[map[string]any](t, patched)
				podSpec := raw["spec"].(map[string]any)
				if diff := cmp.Diff(map[string]any{"a": float64(1)}, podSpec["futureField"]); diff != "" {
					t.Errorf("spec.futureField (-want +got):\n%s", diff)
				}
				app := podSpec["containers"].([]any)[0].(map[string]any)
				if app["futureContainerField"] != true {
					t.Errorf("spec.containers[0].futureContainerField = %v, want true", app["futureContainerField"])
				}
				pod := decode[corev1.Pod](t, patched)
				if diff := cmp.Diff(mutated(t, "apps", futurePod), &pod, quantity); diff != "" {
					t.Errorf("patched pod differs from injector.Mutate's (-want +got):\n%s", diff)
				}
			},
			wantResult: resultInjected, wantReason: reasonInjected,
		},
		"pod out of scope is allowed untouched": {
			req:        podRequest("plain", plainPod),
			wantCode:   http.StatusOK,
			wantAllow:  true,
			wantResult: resultSkipped, wantReason: reasonNotOptedIn,
		},
		"pod labelled disabled is allowed untouched": {
			req:        podRequest("apps", disabledPod),
			wantCode:   http.StatusOK,
			wantAllow:  true,
			wantResult: resultSkipped, wantReason: reasonPodDisabled,
		},
		"pod in a labelled namespace asking for nothing is allowed untouched": {
			req:        podRequest("apps", plainPod),
			wantCode:   http.StatusOK,
			wantAllow:  true,
			wantResult: resultSkipped, wantReason: reasonNothingToInject,
		},
		"pod in an excluded namespace is allowed untouched without reading the namespace": {
			req:        podRequest(metav1.NamespaceSystem, dataPod),
			wantCode:   http.StatusOK,
			wantAllow:  true,
			wantResult: resultSkipped, wantReason: reasonExcludedNamespace,
		},
		"invalid store URL is denied with 422 naming the key": {
			req:              podRequest("plain", badURLPod),
			wantCode:         http.StatusUnprocessableEntity,
			wantStatusReason: metav1.StatusReasonInvalid,
			wantMessage: `Pod "web-" is invalid: metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://x": ` +
				`scheme must be http or https; accepted form: http(s)://host[:port][/path]`,
			wantResult: resultDenied, wantReason: reasonInvalid,
		},
		"every bad annotation is reported in one message": {
			req:              podRequest("plain", manyBadPod),
			wantCode:         http.StatusUnprocessableEntity,
			wantStatusReason: metav1.StatusReasonInvalid,
			wantMessage: `Pod "web-0" is invalid: [` +
				`metadata.annotations[healthz.autocrane.io/min-ready-seconds]: Invalid value: "soon": must be whole seconds from 0 to 86400, ` +
				`metadata.annotations[inject.autocrane.io/sidecar-mode]: Unsupported value: "sideways": supported values: "native", "classic", ` +
				`metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://x": scheme must be http or https; accepted form: http(s)://host[:port][/path]]`,
			wantResult: resultDenied, wantReason: reasonInvalid,
		},
		"invalid namespace default is denied naming the namespace's key": {
			req:              podRequest("bad-default", canaryPod),
			wantCode:         http.StatusUnprocessableEntity,
			wantStatusReason: metav1.StatusReasonInvalid,
			wantMessage: `Pod "web-" is invalid: namespace[bad-default].metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://y": ` +
				`scheme must be http or https; accepted form: http(s)://host[:port][/path]`,
			wantResult: resultDenied, wantReason: reasonInvalid,
		},
		"forged injection record is denied": {
			req:              podRequest("plain", forgedRecordPod),
			wantCode:         http.StatusUnprocessableEntity,
			wantStatusReason: metav1.StatusReasonInvalid,
			wantMessage: `Pod "web-" is invalid: metadata.annotations[autocrane.io/injected]: Invalid value: "yes": ` +
				`not a record written by AutoCrane's injector; remove the annotation to inject afresh`,
			wantResult: resultDenied, wantReason: reasonInvalid,
		},
		"undecodable JSON is a 400": {
			req:              podRequest("apps", `{"metadata":`),
			wantCode:         http.StatusBadRequest,
			wantStatusReason: metav1.StatusReasonBadRequest,
			wantMessage:      "AutoCrane could not decode the pod: unexpected end of JSON input",
			wantResult:       resultErrored, wantReason: reasonDecode,
		},
		"a pod with a field of the wrong type is a 400": {
			req:              podRequest("apps", `{"metadata":{"annotations":{"a":1}}}`),
			wantCode:         http.StatusBadRequest,
			wantStatusReason: metav1.StatusReasonBadRequest,
			wantMessage:      "AutoCrane could not decode the pod: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string",
			wantResult:       resultErrored, wantReason: reasonDecode,
		},
		"an object that is not a JSON object is a 400": {
			req:              podRequest("apps", `null`),
			wantCode:         http.StatusBadRequest,
			wantStatusReason: metav1.StatusReasonBadRequest,
			wantMessage:      "AutoCrane could not decode the pod: the request's object is not a JSON object",
			wantResult:       resultErrored, wantReason: reasonDecode,
		},
		"a namespace that does not exist is a 500": {
			req:              podRequest("gone", dataPod),
			wantCode:         http.StatusInternalServerError,
			wantStatusReason: metav1.StatusReasonInternalError,
			wantMessage:      `AutoCrane could not read namespace "gone": not found (if it was just created, AutoCrane has not seen it yet; retry): namespaces "gone" not found`,
			wantResult:       resultErrored, wantReason: reasonNamespaceLookup,
		},
		"a request without a namespace is a 500": {
			req:              podRequest("", dataPod),
			wantCode:         http.StatusInternalServerError,
			wantStatusReason: metav1.StatusReasonInternalError,
			wantMessage:      "AutoCrane could not read the object's namespace: the request names none",
			wantResult:       resultErrored, wantReason: reasonNamespaceLookup,
		},
		"a failing namespace reader is a 500": {
			reader:           fakeNamespaces{err: errors.New("cache not synced")},
			req:              podRequest("apps", dataPod),
			wantCode:         http.StatusInternalServerError,
			wantStatusReason: metav1.StatusReasonInternalError,
			wantMessage:      `AutoCrane could not read namespace "apps": cache not synced`,
			wantResult:       resultErrored, wantReason: reasonNamespaceLookup,
		},
		"UPDATE is allowed untouched": {
			req: func() admission.Request {
				r := podRequest("apps", dataPod)
				r.Operation = admissionv1.Update
				return r
			}(),
			wantCode:   http.StatusOK,
			wantAllow:  true,
			wantResult: resultSkipped, wantReason: reasonUnsupportedOperation,
		},
		"a resource other than pods is allowed untouched": {
			req: func() admission.Request {
				r := podRequest("apps", `{"apiVersion":"v1","kind":"ConfigMap"}`)
				r.Kind = metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
				r.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}
				return r
			}(),
			wantCode:   http.StatusOK,
			wantAllow:  true,
			wantResult: resultSkipped, wantReason: reasonUnsupportedResource,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader := tc.reader
			if reader == nil {
				reader = testNamespaces
			}
			m, reg := newTestMutator(t, reader)
			resp := m.Handle(t.Context(), tc.req)

			if resp.Allowed != tc.wantAllow {
				t.Errorf("Allowed = %v, want %v (result %+v)", resp.Allowed, tc.wantAllow, resp.Result)
			}
			var code int32
			var reason metav1.StatusReason
			var message string
			if resp.Result != nil {
				code, reason, message = resp.Result.Code, resp.Result.Reason, resp.Result.Message
			}
			if code != tc.wantCode || reason != tc.wantStatusReason {
				t.Errorf("code, reason = %d, %q; want %d, %q", code, reason, tc.wantCode, tc.wantStatusReason)
			}
			if !tc.wantAllow && message != tc.wantMessage {
				t.Errorf("message:\n got: %s\nwant: %s", message, tc.wantMessage)
			}
			if got := len(resp.Patches) > 0; got != tc.wantPatch {
				t.Errorf("patched = %v, want %v (%d ops)", got, tc.wantPatch, len(resp.Patches))
			}
			patched := applyPatch(t, tc.req, resp)
			if tc.check != nil {
				tc.check(t, patched)
			}

			if got := admissions(m, tc.wantResult, tc.wantReason); got != 1 {
				t.Errorf("admissions_total{result=%q,reason=%q} = %v, want 1", tc.wantResult, tc.wantReason, got)
			}
			if total, observed := totalAdmissions(t, reg); total != 1 || observed != 1 {
				t.Errorf("admissions counted %v, durations observed %d; want 1 and 1", total, observed)
			}
		})
	}
}

// mutated is what injector.Mutate makes of raw in namespace ns.
func mutated(t *testing.T, ns, raw string) *corev1.Pod {
	t.Helper()
	meta := testNamespaces.namespaces[ns]
	pod := decode[corev1.Pod](t, []byte(raw))
	res, err := injector.Mutate(spec.Namespace{Name: ns, Labels: meta.Labels, Annotations: meta.Annotations}, &pod, injector.DefaultConfig())
	if err != nil {
		t.Fatalf("Mutate: %v", err)
	}
	return res.Pod
}

func containerNames(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestHandleDeniedStatusNamesEveryField(t *testing.T) {
	m, _ := newTestMutator(t, testNamespaces)
	resp := m.Handle(t.Context(), podRequest("plain", manyBadPod))
	if resp.Result == nil || resp.Result.Details == nil {
		t.Fatalf("Result = %+v, want a Status with details", resp.Result)
	}
	var fields []string
	for _, c := range resp.Result.Details.Causes {
		fields = append(fields, c.Field)
	}
	want := []string{
		"metadata.annotations[healthz.autocrane.io/min-ready-seconds]",
		"metadata.annotations[inject.autocrane.io/sidecar-mode]",
		"metadata.annotations[store.autocrane.io/url]",
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("cause fields (-want +got):\n%s", diff)
	}
	if d := resp.Result.Details; d.Kind != "Pod" || d.Name != "web-0" {
		t.Errorf("details kind/name = %q/%q, want Pod/web-0", d.Kind, d.Name)
	}
}

// A second pass over the pod the first pass produced (the API server
// reinvokes the webhook with reinvocationPolicy: IfNeeded) changes nothing.
func TestHandleSecondPassChangesNothing(t *testing.T) {
	tests := map[string]struct {
		ns, raw string
	}{
		"data deployment":         {"apps", dataPod},
		"fields unknown to k8s":   {"apps", futurePod},
		"data and canary sidecar": {"apps", strings.Replace(dataPod, `"models"}`, `"models","healthz.autocrane.io/min-ready-seconds":"30"}`, 1)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, _ := newTestMutator(t, testNamespaces)
			first := podRequest(tc.ns, tc.raw)
			resp := m.Handle(t.Context(), first)
			if len(resp.Patches) == 0 {
				t.Fatalf("first pass: no patch (result %+v)", resp.Result)
			}
			second := podRequest(tc.ns, string(applyPatch(t, first, resp)))
			resp = m.Handle(t.Context(), second)
			if !resp.Allowed || len(resp.Patches) != 0 {
				t.Errorf("second pass: allowed %v with %d ops, want allowed with 0: %v", resp.Allowed, len(resp.Patches), resp.Patches)
			}
			if got := admissions(m, resultSkipped, reasonUnchanged); got != 1 {
				t.Errorf("admissions_total{result=skipped,reason=unchanged} = %v, want 1", got)
			}
		})
	}
}

func TestHandleRecoversPanic(t *testing.T) {
	m, _ := newTestMutator(t, fakeNamespaces{panics: true})
	req := podRequest("apps", dataPod)
	resp := m.Handle(t.Context(), req)
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusInternalServerError {
		t.Fatalf("response = %+v, want a 500", resp.AdmissionResponse)
	}
	if resp.UID != req.UID {
		t.Errorf("UID = %q, want %q", resp.UID, req.UID)
	}
	want := "AutoCrane's pod mutator failed on request " + string(req.UID) + "; see the manager's log"
	if resp.Result.Message != want {
		t.Errorf("message = %q, want %q", resp.Result.Message, want)
	}
	if got := admissions(m, resultErrored, reasonPanic); got != 1 {
		t.Errorf("admissions_total{result=errored,reason=panic} = %v, want 1", got)
	}
}

func TestHandleLogsOneLinePerRequest(t *testing.T) {
	const secret = "s3cr3t-env-value"
	raw := strings.Replace(dataPod, `"image":"x"`, `"image":"x","env":[{"name":"TOKEN","value":"`+secret+`"}]`, 1)
	tests := map[string]struct {
		req  admission.Request
		want map[string]any
	}{
		"injected": {
			req:  podRequest("apps", raw),
			want: map[string]any{"level": "info", "pod": "web-", "namespace": "apps", "operation": "CREATE", "outcome": "injected", "reason": "injected"},
		},
		"denied": {
			req:  podRequest("plain", manyBadPod),
			want: map[string]any{"level": "info", "pod": "web-0", "namespace": "plain", "operation": "CREATE", "outcome": "denied", "reason": "invalid", "ops": float64(0), "invalidFields": float64(3)},
		},
		"errored": {
			req:  podRequest("gone", raw),
			want: map[string]any{"level": "error", "pod": "web-", "namespace": "gone", "operation": "CREATE", "outcome": "errored", "reason": "namespace-lookup", "ops": float64(0)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			ctx := logf.IntoContext(t.Context(), zap.New(zap.WriteTo(&buf)))
			m, _ := newTestMutator(t, testNamespaces)
			m.Handle(ctx, tc.req)

			if strings.Contains(buf.String(), secret) {
				t.Errorf("log repeats the raw object:\n%s", buf.String())
			}
			var lines []map[string]any
			sc := bufio.NewScanner(&buf)
			for sc.Scan() {
				lines = append(lines, decode[map[string]any](t, sc.Bytes()))
			}
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1", len(lines))
			}
			line := lines[0]
			if line["msg"] != logMessage {
				t.Errorf("msg = %v, want %q", line["msg"], logMessage)
			}
			got := map[string]any{}
			for k := range tc.want {
				got[k] = line[k]
			}
			if _, ok := tc.want["ops"]; !ok {
				if ops, _ := line["ops"].(float64); ops < 1 {
					t.Errorf("ops = %v, want at least 1", line["ops"])
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("log keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewPodMutatorRejects(t *testing.T) {
	badConfig := injector.DefaultConfig()
	badConfig.WatchdogHealthzPort = badConfig.DataDeployerPort
	registered := prometheus.NewRegistry()
	if _, err := NewPodMutator(PodMutatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig(), Registerer: registered}); err != nil {
		t.Fatalf("first NewPodMutator: %v", err)
	}
	tests := map[string]struct {
		opts    PodMutatorOptions
		wantErr string
	}{
		"no namespace reader": {
			opts:    PodMutatorOptions{Config: injector.DefaultConfig()},
			wantErr: "pod mutator: Namespaces reader is required",
		},
		"invalid config": {
			opts:    PodMutatorOptions{Namespaces: testNamespaces, Config: badConfig},
			wantErr: "pod mutator: invalid injector config: the datadeployer and watchdoghealthz ports must differ (both 9780)",
		},
		"zero config": {
			opts: PodMutatorOptions{Namespaces: testNamespaces},
			wantErr: "pod mutator: invalid injector config: images must not be empty\n" +
				`sidecar mode "": must be native or classic` + "\n" +
				"port 0: must be from 1 to 65535\nport 0: must be from 1 to 65535\n" +
				"the datadeployer and watchdoghealthz ports must differ (both 0)\n" +
				"resources of datadeployer: missing defaults\nresources of watchdoghealthz: missing defaults\n" +
				`image pull policy "": must be Always, IfNotPresent or Never`,
		},
		"metrics already registered": {
			opts:    PodMutatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig(), Registerer: registered},
			wantErr: "pod mutator: register webhook metrics: duplicate metrics collector registration attempted",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewPodMutator(tc.opts)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("error:\n got: %v\nwant: %s", err, tc.wantErr)
			}
		})
	}
}

func TestNewPodMutatorWithoutRegistererStillCounts(t *testing.T) {
	m, err := NewPodMutator(PodMutatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig()})
	if err != nil {
		t.Fatalf("NewPodMutator: %v", err)
	}
	m.Handle(t.Context(), podRequest("apps", dataPod))
	if got := admissions(m, resultInjected, reasonInjected); got != 1 {
		t.Errorf("admissions_total{result=injected,reason=injected} = %v, want 1", got)
	}
}

func TestExcludedNamespaces(t *testing.T) {
	tests := map[string]struct {
		excluded     []string
		wantExcluded []string
		wantIncluded []string
	}{
		"empty means the defaults": {
			wantExcluded: []string{"kube-system", "kube-public", "kube-node-lease"},
			wantIncluded: []string{"apps", "autocrane-system"},
		},
		"the manager appends its own namespace": {
			excluded:     append(spec.SystemNamespaces(), "autocrane-system"),
			wantExcluded: []string{"kube-system", "kube-public", "kube-node-lease", "autocrane-system"},
			wantIncluded: []string{"apps"},
		},
		"a list replaces the defaults": {
			excluded:     []string{"apps"},
			wantExcluded: []string{"apps"},
			wantIncluded: []string{"kube-system"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := NewPodMutator(PodMutatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig(), ExcludedNamespaces: tc.excluded})
			if err != nil {
				t.Fatalf("NewPodMutator: %v", err)
			}
			for _, ns := range tc.wantExcluded {
				if !m.isExcluded(ns) {
					t.Errorf("%s is not excluded", ns)
				}
			}
			for _, ns := range tc.wantIncluded {
				if m.isExcluded(ns) {
					t.Errorf("%s is excluded", ns)
				}
			}
		})
	}
}

func TestNewPodMutatorCopiesConfig(t *testing.T) {
	cfg := injector.DefaultConfig()
	m, err := NewPodMutator(PodMutatorOptions{Namespaces: testNamespaces, Config: cfg})
	if err != nil {
		t.Fatalf("NewPodMutator: %v", err)
	}
	cfg.Resources[spec.ComponentDataDeployer].Requests[corev1.ResourceCPU] = resource.MustParse("9")
	got := m.cfg.Resources[spec.ComponentDataDeployer].Requests[corev1.ResourceCPU]
	if got.String() != "10m" {
		t.Errorf("PodMutator's datadeployer cpu request = %s after the caller changed its Config, want 10m", got.String())
	}
}

// When a pod no longer asks for something a previous pass injected (here the
// canary sidecar, followed by a container another webhook appended), the
// entries after it keep their fields unknown to k8s.io/api.
func TestHandleRemovalKeepsUnknownFieldsOfLaterEntries(t *testing.T) {
	m, _ := newTestMutator(t, testNamespaces)
	first := podRequest("apps", strings.Replace(dataPod, `"models"}`, `"models","healthz.autocrane.io/min-ready-seconds":"30"}`, 1))
	obj := decode[map[string]any](t, applyPatch(t, first, m.Handle(t.Context(), first)))
	podSpec := obj["spec"].(map[string]any)
	podSpec["containers"] = append(podSpec["containers"].([]any), map[string]any{"name": "proxy", "image": "p", "futureContainerField": true})
	delete(obj["metadata"].(map[string]any)["annotations"].(map[string]any), spec.KeyMinReadySeconds)
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}

	second := podRequest("apps", string(raw))
	resp := m.Handle(t.Context(), second)
	if len(resp.Patches) == 0 {
		t.Fatalf("no patch: %+v", resp.Result)
	}
	patched := decode[map[string]any](t, applyPatch(t, second, resp))
	var names []string
	for _, c := range patched["spec"].(map[string]any)["containers"].([]any) {
		c := c.(map[string]any)
		names = append(names, c["name"].(string))
		if c["name"] == "proxy" && c["futureContainerField"] != true {
			t.Errorf("proxy lost futureContainerField: %v", c)
		}
		if c["name"] == "app" && c["futureContainerField"] != nil {
			t.Errorf("app gained futureContainerField: %v", c)
		}
	}
	if want := []string{"app", "proxy"}; !slices.Equal(names, want) {
		t.Errorf("containers = %v, want %v", names, want)
	}
}
