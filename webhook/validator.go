package webhook

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// ValidatePath is the path the validating webhook configuration
// (config/webhook/validating.yaml) sends pods and workloads to.
const ValidatePath = "/validate-autocrane"

// Validator is the admission handler of ValidatePath. It validates every
// AutoCrane key of pods and of the pod templates of Deployments,
// StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs through
// spec.ValidatePod, the one place keys are validated.
//
// On UPDATE it reports only the problems the update introduces, so an
// object that was valid before AutoCrane was installed, or whose namespace
// changed, is never stuck.
type Validator struct {
	base
	// validations counts requests by kind and result; duration times them.
	validations *prometheus.CounterVec
	duration    prometheus.Histogram
}

// Validation results, the values of the result label.
const (
	validationAllowed = "allowed"
	validationDenied  = "denied"
	validationErrored = "errored"
)

// NewValidator checks opts and returns a Validator.
func NewValidator(opts ValidatorOptions) (*Validator, error) {
	b, err := newBase("validator", opts)
	if err != nil {
		return nil, err
	}
	v := &Validator{base: b,
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autocrane_webhook_validations_total",
			Help: "Validating admission requests handled, by kind (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, other) and result (allowed, denied, errored).",
		}, []string{"kind", "result"}),
	}
	for _, kind := range append([]string{"Pod", "other"}, templateKindNames()...) {
		for _, r := range []string{validationAllowed, validationDenied, validationErrored} {
			v.validations.WithLabelValues(kind, r)
		}
	}
	v.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "autocrane_webhook_validation_duration_seconds",
		Help:    "Time AutoCrane's validating webhook takes to answer an admission request, from the handler's start to its response.",
		Buckets: durationBuckets,
	})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{v.validations, v.duration} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("validator: register metrics: %w", err)
			}
		}
	}
	return v, nil
}

func templateKindNames() []string {
	var out []string
	for gk := range templateKinds {
		out = append(out, gk.Kind)
	}
	slices.Sort(out)
	return out
}

// kindLabel bounds the kind label to the kinds the webhook is registered for.
func kindLabel(k metav1.GroupVersionKind) string {
	gk := schema.GroupKind{Group: k.Group, Kind: k.Kind}
	if gk == (schema.GroupKind{Kind: "Pod"}) {
		return "Pod"
	}
	if _, ok := templateKinds[gk]; ok {
		return gk.Kind
	}
	return "other"
}

// subject is what is validated of one admitted object: a pod, or the pod
// template of a workload.
type subject struct {
	gk   schema.GroupKind
	name string
	// root is where the pod's fields sit in the object; nil for a pod.
	root     *field.Path
	fields   spec.PodFields
	pod      *corev1.Pod // set for pods only
	template bool
}

// Handle implements admission.Handler.
func (v *Validator) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	defer func() { v.duration.Observe(time.Since(start).Seconds()) }()
	resp := v.handle(ctx, req)
	result := validationAllowed
	switch {
	case resp.Result != nil && resp.Result.Code >= 500, resp.Result != nil && resp.Result.Code == http.StatusBadRequest:
		result = validationErrored
	case !resp.Allowed:
		result = validationDenied
	}
	v.validations.WithLabelValues(kindLabel(req.Kind), result).Inc()
	return resp
}

func (v *Validator) handle(ctx context.Context, req admission.Request) admission.Response {
	log := logf.FromContext(ctx)
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	if v.isExcluded(req.Namespace) {
		return admission.Allowed("")
	}
	obj, err := decodeSubject(req.Kind, req.Object.Raw)
	if err != nil {
		return errored(http.StatusBadRequest, metav1.StatusReasonBadRequest, err)
	}
	if obj == nil {
		return admission.Allowed("not a kind AutoCrane validates")
	}
	ns, err := v.namespace(ctx, req.Namespace)
	if err != nil {
		return errored(http.StatusInternalServerError, metav1.StatusReasonInternalError, err)
	}
	warnings, errs := v.validate(ctx, ns, obj, req.Operation == admissionv1.Create)
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		old, err := decodeSubject(req.Kind, req.OldObject.Raw)
		if err != nil {
			return errored(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Errorf("old object: %w", err))
		}
		if old != nil {
			oldWarnings, oldErrs := v.validate(ctx, ns, old, false)
			warnings, errs = newWarnings(warnings, oldWarnings), newErrors(errs, oldErrs)
		}
	}
	log.V(1).Info("Validation", "kind", obj.gk.Kind, "namespace", req.Namespace, "name", obj.name, "errors", len(errs), "warnings", len(warnings))
	if len(errs) > 0 {
		status := apierrors.NewInvalid(obj.gk, obj.name, errs)
		return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{
			Allowed:  false,
			Result:   &status.ErrStatus,
			Warnings: warnings,
		}}
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// validate returns every problem of obj in namespace ns, with paths from
// the object's root.
func (v *Validator) validate(ctx context.Context, ns spec.Namespace, obj *subject, create bool) ([]string, field.ErrorList) {
	warnings, errs := spec.ValidatePod(ns, obj.fields)
	if obj.template {
		errs = append(errs, stateKeysInTemplate(obj.fields)...)
	}
	if obj.pod != nil && create {
		errs = append(errs, v.checkInjectedRecord(ns, obj.pod)...)
		errs = append(errs, v.checkInitialRequests(ctx, ns, obj.pod)...)
	}
	spec.SortErrors(errs)
	return warnings, spec.Reroot(errs, obj.root)
}

// checkInjectedRecord rejects an autocrane.io/injected record on a new pod
// that the injector did not write: one on a pod out of injection scope, or
// that names objects the pod does not have. (The injector rewrites the
// record of every pod in its scope, so a record there is its own.)
func (v *Validator) checkInjectedRecord(ns spec.Namespace, pod *corev1.Pod) field.ErrorList {
	raw, ok := pod.Annotations[spec.AnnotationInjected]
	if !ok {
		return nil
	}
	path := spec.AnnotationPath(spec.AnnotationInjected)
	const owned = "is AutoCrane's state, written by its injector; remove it and let the injector write it"
	res, err := injector.Mutate(ns, pod, v.cfg)
	if err != nil {
		return nil // ValidatePod reports why.
	}
	if res.Outcome == injector.Skipped {
		return field.ErrorList{field.Forbidden(path, owned+" (this pod is outside the injector's scope or asks for nothing)")}
	}
	rec, ferr := spec.ParseInjected(raw)
	if ferr != nil {
		return field.ErrorList{ferr}
	}
	has := func(list []corev1.Container, name string) bool {
		return slices.ContainsFunc(list, func(c corev1.Container) bool { return c.Name == name })
	}
	for _, n := range rec.InitContainers {
		if !has(pod.Spec.InitContainers, n) {
			return field.ErrorList{field.Forbidden(path, owned+fmt.Sprintf(" (it lists init container %q, which the pod lacks)", n))}
		}
	}
	for _, n := range rec.Containers {
		if !has(pod.Spec.Containers, n) {
			return field.ErrorList{field.Forbidden(path, owned+fmt.Sprintf(" (it lists container %q, which the pod lacks)", n))}
		}
	}
	return nil
}

// stateKeysInTemplate rejects AutoCrane's state keys in a pod template:
// they are written on pods by AutoCrane, and a template carrying them would
// make every pod it creates a forgery.
func stateKeysInTemplate(f spec.PodFields) field.ErrorList {
	var errs field.ErrorList
	const msg = "is AutoCrane's state, written on pods by AutoCrane; it cannot be set in a pod template"
	for _, k := range slices.Sorted(maps.Keys(f.Annotations)) {
		if spec.IsStateKey(k) {
			errs = append(errs, field.Forbidden(spec.AnnotationPath(k), msg))
		}
	}
	if _, ok := f.Labels[spec.LabelHealth]; ok {
		errs = append(errs, field.Forbidden(field.NewPath("metadata", "labels").Key(spec.LabelHealth), msg))
	}
	return errs
}

// newErrors keeps the errors of cur that old did not have: an update is
// judged on what it changes.
func newErrors(cur, old field.ErrorList) field.ErrorList {
	seen := map[string]bool{}
	for _, e := range old {
		seen[e.Error()] = true
	}
	var out field.ErrorList
	for _, e := range cur {
		if !seen[e.Error()] {
			out = append(out, e)
		}
	}
	return out
}

func newWarnings(cur, old []string) []string {
	var out []string
	for _, w := range cur {
		if !slices.Contains(old, w) {
			out = append(out, w)
		}
	}
	return out
}

// podTemplate decodes the parts of a workload that carry a pod template.
type podTemplate struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Template    *corev1.PodTemplateSpec `json:"template"`
		JobTemplate *struct {
			Spec struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
}

// templateKinds are the workloads whose pod template is validated, and
// where it sits.
var templateKinds = map[schema.GroupKind]*field.Path{
	{Group: "apps", Kind: "Deployment"}:  field.NewPath("spec", "template"),
	{Group: "apps", Kind: "StatefulSet"}: field.NewPath("spec", "template"),
	{Group: "apps", Kind: "DaemonSet"}:   field.NewPath("spec", "template"),
	{Group: "apps", Kind: "ReplicaSet"}:  field.NewPath("spec", "template"),
	{Group: "batch", Kind: "Job"}:        field.NewPath("spec", "template"),
	{Group: "batch", Kind: "CronJob"}:    field.NewPath("spec", "jobTemplate", "spec", "template"),
}

// decodeSubject decodes a pod or a workload's pod template; nil for other
// kinds. Decoding is case-sensitive, like the API server's.
func decodeSubject(kind metav1.GroupVersionKind, raw []byte) (*subject, error) {
	gk := schema.GroupKind{Group: kind.Group, Kind: kind.Kind}
	if gk == (schema.GroupKind{Kind: "Pod"}) {
		pod := &corev1.Pod{}
		if err := utiljson.Unmarshal(raw, pod); err != nil {
			return nil, fmt.Errorf("decode pod: %w", err)
		}
		return &subject{gk: gk, name: objectName(pod.ObjectMeta), pod: pod,
			fields: spec.PodFields{Labels: pod.Labels, Annotations: pod.Annotations, Spec: &pod.Spec}}, nil
	}
	root, ok := templateKinds[gk]
	if !ok {
		return nil, nil
	}
	var w podTemplate
	if err := utiljson.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("decode %s: %w", strings.ToLower(gk.Kind), err)
	}
	t := w.Spec.Template
	if w.Spec.JobTemplate != nil {
		t = &w.Spec.JobTemplate.Spec.Template
	}
	if t == nil {
		t = &corev1.PodTemplateSpec{}
	}
	return &subject{gk: gk, name: objectName(w.ObjectMeta), root: root, template: true,
		fields: spec.PodFields{Labels: t.Labels, Annotations: t.Annotations, Spec: &t.Spec}}, nil
}

func objectName(m metav1.ObjectMeta) string {
	if m.Name != "" {
		return m.Name
	}
	return m.GenerateName
}
