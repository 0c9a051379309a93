package webhook

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/autocrane/autocrane/injector"
)

func newTestValidator(t *testing.T) (*Validator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	v, err := NewValidator(ValidatorOptions{Namespaces: testNamespaces, Config: injector.DefaultConfig(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return v, reg
}

func validationRequest(op admissionv1.Operation, kind metav1.GroupVersionKind, ns, obj, old string) admission.Request {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Kind: kind, Namespace: ns, Operation: op,
		Object: runtime.RawExtension{Raw: []byte(obj)},
	}}
	if old != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	}
	return req
}

func deploymentJSON(annotations map[string]string) string {
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{"annotations": annotations},
			"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "x"}}},
		}},
	})
	return string(b)
}

var (
	deploymentGVK = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	cronJobGVK    = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
)

func TestValidatorHandle(t *testing.T) {
	badProbe := map[string]string{"probe.autocrane.io/web": "localhost:80/w"}
	goodProbe := map[string]string{"probe.autocrane.io/web": "POD_IP:80/w"}
	tests := map[string]struct {
		req          admission.Request
		wantAllowed  bool
		wantCode     int32
		wantMessage  string
		wantWarnings []string
	}{
		"good deployment": {
			req:         validationRequest(admissionv1.Create, deploymentGVK, "plain", deploymentJSON(goodProbe), ""),
			wantAllowed: true,
		},
		"bad deployment names the template path": {
			req:         validationRequest(admissionv1.Create, deploymentGVK, "plain", deploymentJSON(badProbe), ""),
			wantCode:    http.StatusUnprocessableEntity,
			wantMessage: `Deployment.apps "web" is invalid: spec.template.metadata.annotations[probe.autocrane.io/web]: Invalid value: "localhost:80/w": the host must be the literal POD_IP (the pod's own IP), not "localhost"; accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH`,
		},
		"cronjob template": {
			req: validationRequest(admissionv1.Create, cronJobGVK, "plain",
				`{"metadata":{"name":"nightly"},"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"status.autocrane.io/x":"y"}}}}}}}`, ""),
			wantCode:    http.StatusUnprocessableEntity,
			wantMessage: `CronJob.batch "nightly" is invalid: spec.jobTemplate.spec.template.metadata.annotations[status.autocrane.io/x]: Forbidden: is AutoCrane's state, written on pods by AutoCrane; it cannot be set in a pod template`,
		},
		"update keeps an old problem but allows the update": {
			req: validationRequest(admissionv1.Update, deploymentGVK, "plain",
				deploymentJSON(map[string]string{"probe.autocrane.io/web": "localhost:80/w", "probe.autocrane.io/other": "POD_IP:81/x"}),
				deploymentJSON(badProbe)),
			wantAllowed: true,
		},
		"update reports only what it introduces": {
			req: validationRequest(admissionv1.Update, deploymentGVK, "plain",
				deploymentJSON(map[string]string{"probe.autocrane.io/web": "localhost:80/w", "probe.autocrane.io/other": "10.0.0.1:81/x"}),
				deploymentJSON(badProbe)),
			wantCode:    http.StatusUnprocessableEntity,
			wantMessage: `Deployment.apps "web" is invalid: spec.template.metadata.annotations[probe.autocrane.io/other]: Invalid value: "10.0.0.1:81/x": the host must be the literal POD_IP (the pod's own IP), not "10.0.0.1"; accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH`,
		},
		"warning for a typo": {
			req:          validationRequest(admissionv1.Create, deploymentGVK, "plain", deploymentJSON(map[string]string{"prob.autocrane.io/web": "x"}), ""),
			wantAllowed:  true,
			wantWarnings: []string{"annotation prob.autocrane.io/web is not an AutoCrane key and is ignored; did you mean probe.autocrane.io/web?"},
		},
		"bad namespace default on a pod": {
			req:         validationRequest(admissionv1.Create, podGVK, "bad-default", `{"metadata":{"name":"p","annotations":{"data.autocrane.io/m":"m"}},"spec":{"containers":[{"name":"app","image":"x"}]}}`, ""),
			wantCode:    http.StatusUnprocessableEntity,
			wantMessage: `Pod "p" is invalid: namespace[bad-default].metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://y": scheme must be http or https; accepted form: http(s)://host[:port][/path]`,
		},
		"undecodable": {
			req:      validationRequest(admissionv1.Create, podGVK, "plain", `{"metadata":`, ""),
			wantCode: http.StatusBadRequest,
		},
		"case matters, as in the API server": {
			req:         validationRequest(admissionv1.Create, podGVK, "plain", `{"Metadata":{"annotations":{"probe.autocrane.io/web":"localhost:1/x"}}}`, ""),
			wantAllowed: true,
		},
		"other kinds pass": {
			req:         validationRequest(admissionv1.Create, metav1.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, "plain", `{}`, ""),
			wantAllowed: true,
		},
		"unknown namespace errors": {
			req:      validationRequest(admissionv1.Create, podGVK, "nowhere", `{"metadata":{"name":"p"}}`, ""),
			wantCode: http.StatusInternalServerError,
		},
		"delete is allowed": {
			req:         validationRequest(admissionv1.Delete, podGVK, "plain", ``, ""),
			wantAllowed: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, _ := newTestValidator(t)
			resp := v.Handle(t.Context(), tc.req)
			if resp.Allowed != tc.wantAllowed {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			if tc.wantCode != 0 && (resp.Result == nil || resp.Result.Code != tc.wantCode) {
				t.Errorf("code: %+v, want %d", resp.Result, tc.wantCode)
			}
			if tc.wantMessage != "" && resp.Result.Message != tc.wantMessage {
				t.Errorf("message:\n got %s\nwant %s", resp.Result.Message, tc.wantMessage)
			}
			if diff := cmp.Diff(tc.wantWarnings, resp.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidatorCountsResults(t *testing.T) {
	v, _ := newTestValidator(t)
	ctx := t.Context()
	v.Handle(ctx, validationRequest(admissionv1.Create, deploymentGVK, "plain", deploymentJSON(nil), ""))
	v.Handle(ctx, validationRequest(admissionv1.Create, deploymentGVK, "plain", deploymentJSON(map[string]string{"probe.autocrane.io/w": "x"}), ""))
	v.Handle(ctx, validationRequest(admissionv1.Create, podGVK, "plain", `{`, ""))
	for _, tc := range []struct {
		kind, result string
		want         float64
	}{{"Deployment", "allowed", 1}, {"Deployment", "denied", 1}, {"Pod", "errored", 1}, {"Pod", "allowed", 0}} {
		if got := testutil.ToFloat64(v.validations.WithLabelValues(tc.kind, tc.result)); got != tc.want {
			t.Errorf("%s/%s = %v, want %v", tc.kind, tc.result, got, tc.want)
		}
	}
}
