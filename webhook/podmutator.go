package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/autocrane/autocrane/injector"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MutatePodPath is the path the mutating webhook configuration
// (config/webhook/manifests.yaml) sends pods to.
const MutatePodPath = "/mutate-v1-pod"

// namespaceGVK is how namespaces are read: as metadata only.
var namespaceGVK = corev1.SchemeGroupVersion.WithKind("Namespace")

// podGVK and podGVR are the only kind and resource the pod mutator handles.
var (
	podGVK = metav1.GroupVersionKind{Group: "", Version: "v1", Kind: "Pod"}
	podGVR = metav1.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"}
)

// logMessage is the message of the one log line per request.
const logMessage = "Pod admission"

// PodMutator is the admission handler of MutatePodPath: it injects
// AutoCrane's sidecars into pods on CREATE. It is safe for concurrent use.
//
// Serve it wrapped in an admission.Webhook, whose RecoverPanic is on by
// default; Handle also recovers a panic itself, answers 500 with the
// request's UID and counts it, so it is safe without the wrapper too.
type PodMutator struct {
	base
	metrics *metrics
}

var _ admission.Handler = (*PodMutator)(nil)

// NewPodMutator checks opts and returns the handler. It fails when the
// Config is invalid, the reader is missing or the metrics cannot be
// registered (for example, registered twice on the same Registerer).
func NewPodMutator(opts PodMutatorOptions) (*PodMutator, error) {
	b, err := newBase("pod mutator", opts)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer, webhookMutatePod)
	if err != nil {
		return nil, fmt.Errorf("pod mutator: %w", err)
	}
	return &PodMutator{base: b, metrics: m}, nil
}

// handled is what Handle decided, for the response, the log and the metrics.
type handled struct {
	result, reason string
	ops            int
	// err is our own failure (result errored); logged with log.Error.
	err error
	// stack is where a recovered panic happened.
	stack string
	// invalid is the number of field errors of a denied pod. The errors
	// themselves are not logged: they repeat the user's values.
	invalid int
}

// Handle answers one admission request. Only CREATE of core/v1 pods is
// handled; everything else is allowed untouched.
//
// It answers:
//   - allowed with a JSON patch when the pod was injected;
//   - allowed without a patch when the pod is out of scope, asks for
//     nothing, already holds what it asks for, or is in an excluded
//     namespace;
//   - denied, 422 Invalid, naming every bad key, when the pod's or its
//     namespace's AutoCrane keys are invalid;
//   - errored, 400 BadRequest, when the object is not a pod in JSON;
//   - errored, 500 InternalError, when the namespace cannot be read (or
//     does not exist), the patch cannot be computed or the handler fails.
func (m *PodMutator) Handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	start := time.Now()
	var h handled
	podName := req.Name
	namespace := req.Namespace
	defer func() {
		if r := recover(); r != nil {
			h = handled{result: resultErrored, reason: reasonPanic, err: fmt.Errorf("panic: %v [recovered]", r), stack: string(debug.Stack())}
			resp = errored(http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Errorf("AutoCrane's pod mutator failed on request %s; see the manager's log", req.UID))
			resp.UID = req.UID
		}
		m.metrics.observe(h.result, h.reason, time.Since(start))
		log := logf.FromContext(ctx)
		kv := []any{"pod", podName, "namespace", namespace, "operation", string(req.Operation),
			"outcome", h.result, "reason", h.reason, "ops", h.ops}
		if h.invalid > 0 {
			kv = append(kv, "invalidFields", h.invalid)
		}
		if h.stack != "" {
			kv = append(kv, "stack", h.stack)
		}
		if h.err != nil {
			log.Error(h.err, logMessage, kv...)
			return
		}
		log.Info(logMessage, kv...)
	}()

	if req.Operation != admissionv1.Create {
		h = handled{result: resultSkipped, reason: reasonUnsupportedOperation}
		return admission.Allowed("AutoCrane injects pods on CREATE only")
	}
	if req.Kind != podGVK || req.Resource != podGVR || req.SubResource != "" {
		h = handled{result: resultSkipped, reason: reasonUnsupportedResource}
		return admission.Allowed("AutoCrane injects core/v1 pods only")
	}

	pod, err := decodePod(req.Object.Raw)
	if err != nil {
		h = handled{result: resultErrored, reason: reasonDecode, err: err}
		return errored(http.StatusBadRequest, metav1.StatusReasonBadRequest, err)
	}
	if pod.Name != "" || pod.GenerateName != "" {
		podName = nameOf(pod)
	}
	if pod.Namespace != "" {
		namespace = pod.Namespace
	}

	if m.isExcluded(namespace) {
		h = handled{result: resultSkipped, reason: reasonExcludedNamespace}
		return admission.Allowed("")
	}

	ns, err := m.namespace(ctx, namespace)
	if err != nil {
		h = handled{result: resultErrored, reason: reasonNamespaceLookup, err: err}
		return errored(http.StatusInternalServerError, metav1.StatusReasonInternalError, err)
	}

	res, err := injector.Mutate(ns, pod, m.cfg)
	if err != nil {
		var inv *injector.InvalidError
		if errors.As(err, &inv) {
			h = handled{result: resultDenied, reason: reasonInvalid, invalid: len(inv.Errs)}
			status := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, nameOf(pod), inv.Errs)
			return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status.ErrStatus}}
		}
		h = handled{result: resultErrored, reason: reasonInternal, err: err}
		return errored(http.StatusInternalServerError, metav1.StatusReasonInternalError,
			fmt.Errorf("AutoCrane could not inject the pod: %w", err))
	}

	if res.Outcome != injector.Skipped {
		// New pods start on the last known good data. Without it (the
		// cache unreadable), the controller writes the request a moment
		// later: no reason to refuse the pod.
		reqs, err := m.initialRequests(ctx, ns, res.Pod)
		if err != nil {
			logf.FromContext(ctx).Error(err, "no initial data requests; the data rollout controller will write them")
		}
		if out := withInitialRequests(res.Pod, reqs); out != res.Pod {
			res.Pod, res.Outcome = out, injector.Injected
		}
	}

	switch res.Outcome {
	case injector.Skipped:
		h = handled{result: resultSkipped, reason: skipReason(res.Reason)}
		return admission.Allowed("")
	case injector.Unchanged:
		h = handled{result: resultSkipped, reason: reasonUnchanged}
		return admission.Allowed("")
	case injector.Injected:
		// The patch is the diff of the typed original and the typed result,
		// never of req.Object.Raw: fields k8s.io/api does not know are in
		// neither, so the patch leaves them alone (see injector.Patch).
		ops, err := injector.Patch(pod, res.Pod)
		if err != nil {
			h = handled{result: resultErrored, reason: reasonPatch, err: err}
			return errored(http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Errorf("AutoCrane could not compute the pod's patch: %w", err))
		}
		h = handled{result: resultInjected, reason: reasonInjected, ops: len(ops)}
		return admission.Patched("", ops...)
	default:
		err := fmt.Errorf("injector returned unknown outcome %q", res.Outcome)
		h = handled{result: resultErrored, reason: reasonInternal, err: err}
		return errored(http.StatusInternalServerError, metav1.StatusReasonInternalError, err)
	}
}

// decodePod decodes the request's object as the API server does: unknown
// fields are tolerated (the API server may be newer than k8s.io/api), and
// keys match case-sensitively. encoding/json would also accept "Metadata"
// for "metadata"; the patch, whose paths come from the typed pod, would then
// name keys the raw object does not have.
func decodePod(raw []byte) (*corev1.Pod, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("AutoCrane could not decode the pod: the request's object is not a JSON object")
	}
	pod := &corev1.Pod{}
	if err := utiljson.Unmarshal(raw, pod); err != nil {
		return nil, fmt.Errorf("AutoCrane could not decode the pod: %w", err)
	}
	return pod, nil
}

// nameOf is the pod's name, or its generateName when the API server has not
// generated the name yet.
func nameOf(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}

// errored is admission.Errored with a Status reason, so clients and alerts
// can tell our failures from the user's mistakes.
func errored(code int32, reason metav1.StatusReason, err error) admission.Response {
	resp := admission.Errored(code, err)
	resp.Result.Reason = reason
	return resp
}
