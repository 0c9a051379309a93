package envtest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// These tests check config/policy/ (the ValidatingAdmissionPolicy that keeps
// AutoCrane's state keys owned) and config/rbac/ (the ClusterRoles that grant
// them) against the real API server. See docs/ownership.md. Package-level
// names here start with "own" so they cannot collide with other files'.

const (
	// ownershipPolicy names the policy and its binding.
	ownershipPolicy = "autocrane-state-ownership"
	// ownRBACDir holds AutoCrane's RBAC, applied by the tests that need it
	// (TestMain installs only config/policy/).
	ownRBACDir = "../../config/rbac"
	// ownManagerUser is the user name AutoCrane's service account
	// authenticates as.
	ownManagerUser = "system:serviceaccount:" + ownNamespace + ":autocrane-manager"

	// Values in the forms the contract gives, in case a validating webhook
	// checks them.
	ownWatchdogValue = "info/2026-01-02T03:04:05Z/ok"
	ownForgedValue   = "info/2026-01-02T03:04:05Z/forged"
	ownDataValue     = "models v1 sha256:0000"
	// ownNoteKey is an unrelated annotation anyone with pod rights may write.
	ownNoteKey = "example.com/note"
	// ownAppliedKey is another, written with server-side apply (a field
	// manager of its own).
	ownAppliedKey = "example.com/applied"
)

// Changed keys as the policy's message names them.
func ownAnnotationKey(k string) string { return "annotation " + k }

var ownHealthLabelKey = "label " + spec.LabelHealth

// ownInjectedValue is a well-formed autocrane.io/injected record that the
// injector did not write.
var ownInjectedValue = spec.Injected{Version: spec.InjectedVersion, Hash: "not-the-injectors"}.String()

// ownWatchdogDenial is the error text of a write of watchdog keys by user.
// resource is "pods", or "bindings" for the top-level bindings resource.
func ownWatchdogDenial(resource, name, user, ns string, keys ...string) string {
	return ownDenial(resource, name, user, ns, keys, "watchdogs.autocrane.io", "autocrane-watchdog-poster")
}

// ownDataDenial is the error text of a write of data keys by user.
func ownDataDenial(resource, name, user, ns string, keys ...string) string {
	return ownDenial(resource, name, user, ns, keys, "datadeployments.autocrane.io", "autocrane-data-operator")
}

func ownDenial(resource, name, user, ns string, keys []string, virtual, role string) string {
	return fmt.Sprintf(`%s %q is forbidden: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: `+
		`user %q may not change %s: it needs "update" on %s in namespace %s, which the ClusterRole %s grants`,
		resource, name, ownershipPolicy, ownershipPolicy, user, strings.Join(keys, ", "), virtual, ns, role)
}

// ownWantDenied fails t unless err is a 403 with exactly the message want.
func ownWantDenied(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("write allowed, want: %s", want)
	}
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("error mismatch (-want +got):\n%s", cmp.Diff(want, err.Error()))
	}
}

// ownUser is a user authenticated by a client certificate, with no
// impersonation involved.
type ownUser struct {
	name   string
	client client.Client
}

func newOwnUser(t *testing.T, name string, groups ...string) ownUser {
	t.Helper()
	cfg, _, err := suite.env.AddUser(name, groups...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: suite.env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return ownUser{name: name, client: c}
}

// ownPodWriter is the Role the tests' users get in their namespace: every write
// to pods a user may be given, and nothing on AutoCrane's virtual resources,
// so that what the policy denies is not RBAC's doing.
var ownPodWriter = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "create", "update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods/status", "pods/ephemeralcontainers", "pods/resize"}, Verbs: []string{"update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods/binding", "bindings"}, Verbs: []string{"create"}},
}

// ownGrantPodWriter lets subject write pods in ns, and waits until the
// authorizer says so.
func ownGrantPodWriter(ctx context.Context, t *testing.T, ns string, subject rbacv1.Subject, user string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pod-writer", Namespace: ns}, Rules: ownPodWriter}
	if err := suite.env.Client.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	ownBindRole(ctx, t, ns, "Role", "pod-writer", subject)
	ownWaitForAccess(ctx, t, user, ns, "", "pods", "patch")
}

// ownBindRole binds a Role or ClusterRole to subject in ns.
func ownBindRole(ctx context.Context, t *testing.T, ns, kind, role string, subject rbacv1.Subject) {
	t.Helper()
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: role + "-", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role},
		Subjects:   []rbacv1.Subject{subject},
	}
	if err := suite.env.Client.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
}

func ownUserSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

// ownWaitForAccess waits until the authorizer allows user verb on resource in
// ns: RBAC objects reach the authorizer through an informer, a moment after
// they are created. The policy's authorizer checks use the same authorizer.
func ownWaitForAccess(ctx context.Context, t *testing.T, user, ns, group, resource, verb string) {
	t.Helper()
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Group: group, Resource: resource, Verb: verb,
			},
		}}
		if err := suite.env.Client.Create(ctx, sar); err != nil {
			return false, err
		}
		if !sar.Status.Allowed {
			return false, fmt.Errorf("%s may not %s %s in %s yet: %s", user, verb, resource, ns, sar.Status.Reason)
		}
		return true, nil
	})
}

// ownApplyRBAC installs config/rbac/ as it ships (idempotent).
func ownApplyRBAC(ctx context.Context, t *testing.T) {
	t.Helper()
	if _, _, err := suite.env.Kubectl(ctx, nil, "apply", "-k", ownRBACDir); err != nil {
		t.Fatal(err)
	}
}

// ownWaitForPolicy waits until the API server enforces the policy, by
// forging a watchdog status on pod as u in a dry run. TestMain installs the
// policy before any test starts, but the API server picks up policies and
// bindings through informers.
func ownWaitForPolicy(ctx context.Context, t *testing.T, u ownUser, pod *corev1.Pod) {
	t.Helper()
	key := spec.PrefixWatchdogStatus + "policy-probe"
	want := ownWatchdogDenial("pods", pod.Name, u.name, pod.Namespace, ownAnnotationKey(key))
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		err := u.client.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{key: ownForgedValue}, nil), client.DryRunAll)
		if err == nil {
			return false, fmt.Errorf("forged %s allowed: the policy is not enforced yet", key)
		}
		if err.Error() != want {
			return false, err
		}
		return true, nil
	})
}

// ownMergePatch sets (or, for a nil value, removes) annotations and labels.
func ownMergePatch(annotations, labels map[string]any) client.Patch {
	meta := map[string]any{}
	if annotations != nil {
		meta["annotations"] = annotations
	}
	if labels != nil {
		meta["labels"] = labels
	}
	return client.RawPatch(types.MergePatchType, ownJSON(map[string]any{"metadata": meta}))
}

// ownJSONPointer escapes a map key for a JSON patch path.
func ownJSONPointer(key string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}

func ownJSONPatch(ops ...map[string]any) client.Patch {
	return client.RawPatch(types.JSONPatchType, ownJSON(ops))
}

func ownJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ownCreatePod creates pod in ns as the admin.
func ownCreatePod(ctx context.Context, t *testing.T, ns string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	pod.Namespace = ns
	if err := suite.env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return pod
}

func ownGetPod(ctx context.Context, t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	var got corev1.Pod
	if err := suite.env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	return &got
}

// ownWantMetadata fails t unless the stored pod's annotations and labels are
// exactly these.
func ownWantMetadata(ctx context.Context, t *testing.T, pod *corev1.Pod, annotations, labels map[string]string) {
	t.Helper()
	got := ownGetPod(ctx, t, pod)
	if diff := cmp.Diff(annotations, got.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(labels, got.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
}

// TestOwnershipPolicyTypeChecks checks that the API server type-checked the
// policy as installed without a warning: a warning means an expression
// refers to a field that a matched kind does not have.
func TestOwnershipPolicyTypeChecks(t *testing.T) {
	ctx := t.Context()
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		var p admissionregistrationv1.ValidatingAdmissionPolicy
		if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: ownershipPolicy}, &p); err != nil {
			return false, err
		}
		if p.Status.ObservedGeneration != p.Generation || p.Status.TypeChecking == nil {
			return false, fmt.Errorf("not type-checked yet (observed generation %d of %d)", p.Status.ObservedGeneration, p.Generation)
		}
		if w := p.Status.TypeChecking.ExpressionWarnings; len(w) > 0 {
			t.Fatalf("type-checking warnings: %+v", w)
		}
		return true, nil
	})
}

// TestOwnershipPlainUserCannotForgeState: a user who may write pods, and
// nothing else, can write neither watchdog nor data keys, by any verb or
// patch type, and is told which RBAC rule would allow it.
func TestOwnershipPlainUserCannotForgeState(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	mallory := newOwnUser(t, "mallory")
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(mallory.name), mallory.name)

	// The admin creates a pod holding state, as AutoCrane would have
	// written it; the injector adds autocrane.io/injected.
	web := spec.PrefixWatchdogStatus + "web"
	request := spec.PrefixDataRequest + "models"
	annotations := dataAnnotations()
	annotations[web] = ownWatchdogValue
	annotations[request] = ownDataValue
	pod := ownCreatePod(ctx, t, ns, appPod("app", annotations, map[string]string{spec.LabelHealth: "info"}))
	if _, ok := pod.Annotations[spec.AnnotationInjected]; !ok {
		t.Fatalf("the injector did not write %s", spec.AnnotationInjected)
	}
	ownWaitForPolicy(ctx, t, mallory, pod)
	before := ownGetPod(ctx, t, pod)

	x := spec.PrefixWatchdogStatus + "x"
	status := spec.PrefixDataStatus + "models"
	mc := mallory.client
	cases := map[string]struct {
		write func(*corev1.Pod) error
		want  string
	}{
		"merge patch adds a watchdog status": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(map[string]any{x: ownForgedValue}, nil))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(x)),
		},
		"JSON patch adds a watchdog status": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownJSONPatch(map[string]any{"op": "add", "path": "/metadata/annotations/" + ownJSONPointer(x), "value": ownForgedValue}))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(x)),
		},
		"strategic merge patch adds a watchdog status": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, client.RawPatch(types.StrategicMergePatchType,
					ownJSON(map[string]any{"metadata": map[string]any{"annotations": map[string]any{x: ownForgedValue}}})))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(x)),
		},
		"server-side apply sets a watchdog status": {
			write: func(p *corev1.Pod) error {
				return mc.Apply(ctx, corev1ac.Pod(p.Name, p.Namespace).WithAnnotations(map[string]string{x: ownForgedValue}),
					client.FieldOwner("mallory"), client.ForceOwnership)
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(x)),
		},
		"update adds a watchdog status": {
			write: func(p *corev1.Pod) error {
				p.Annotations[x] = ownForgedValue
				return mc.Update(ctx, p)
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(x)),
		},
		"merge patch changes a watchdog status": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(map[string]any{web: ownForgedValue}, nil))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(web)),
		},
		"JSON patch removes a watchdog status": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownJSONPatch(map[string]any{"op": "remove", "path": "/metadata/annotations/" + ownJSONPointer(web)}))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(web)),
		},
		"merge patch changes the health label": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(nil, map[string]any{spec.LabelHealth: "error"}))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownHealthLabelKey),
		},
		"JSON patch removes the health label": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownJSONPatch(map[string]any{"op": "remove", "path": "/metadata/labels/" + ownJSONPointer(spec.LabelHealth)}))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownHealthLabelKey),
		},
		"several watchdog keys are named, sorted": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(
					map[string]any{spec.PrefixWatchdogStatus + "b": ownForgedValue, spec.PrefixWatchdogStatus + "a": ownForgedValue, web: nil},
					map[string]any{spec.LabelHealth: nil}))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(spec.PrefixWatchdogStatus+"a"),
				ownAnnotationKey(spec.PrefixWatchdogStatus+"b"), ownAnnotationKey(web), ownHealthLabelKey),
		},
		"merge patch changes a data request": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(map[string]any{request: "models v2 sha256:1111"}, nil))
			},
			want: ownDataDenial("pods", "app", "mallory", ns, ownAnnotationKey(request)),
		},
		"JSON patch removes a data request": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownJSONPatch(map[string]any{"op": "remove", "path": "/metadata/annotations/" + ownJSONPointer(request)}))
			},
			want: ownDataDenial("pods", "app", "mallory", ns, ownAnnotationKey(request)),
		},
		"merge patch adds a data status": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(map[string]any{status: ownDataValue}, nil))
			},
			want: ownDataDenial("pods", "app", "mallory", ns, ownAnnotationKey(status)),
		},
		"merge patch changes autocrane.io/injected": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(map[string]any{spec.AnnotationInjected: ownInjectedValue}, nil))
			},
			want: ownDataDenial("pods", "app", "mallory", ns, ownAnnotationKey(spec.AnnotationInjected)),
		},
		"JSON patch removes autocrane.io/injected": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownJSONPatch(map[string]any{"op": "remove", "path": "/metadata/annotations/" + ownJSONPointer(spec.AnnotationInjected)}))
			},
			want: ownDataDenial("pods", "app", "mallory", ns, ownAnnotationKey(spec.AnnotationInjected)),
		},
		// Only the first failing validation's message reaches the user:
		// watchdog keys are checked first.
		"watchdog and data keys at once: the watchdog keys are reported": {
			write: func(p *corev1.Pod) error {
				return mc.Patch(ctx, p, ownMergePatch(map[string]any{x: ownForgedValue, request: nil}, nil))
			},
			want: ownWatchdogDenial("pods", "app", "mallory", ns, ownAnnotationKey(x)),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ownWantDenied(t, tc.write(before.DeepCopy()), tc.want)
		})
	}
	t.Run("more than five keys: five are named", func(t *testing.T) {
		forged := map[string]any{}
		var keys []string
		for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
			forged[spec.PrefixDataStatus+n] = ownDataValue
			keys = append(keys, ownAnnotationKey(spec.PrefixDataStatus+n))
		}
		err := mc.Patch(ctx, before.DeepCopy(), ownMergePatch(forged, nil))
		// Which five is not specified (CEL maps iterate in random order).
		want := ownDataDenial("pods", "app", "mallory", ns, "LIST and 2 more")
		head, tail, _ := strings.Cut(want, "LIST")
		if err == nil || !apierrors.IsForbidden(err) || !strings.HasPrefix(err.Error(), head) || !strings.HasSuffix(err.Error(), tail) {
			t.Fatalf("got %v, want %s", err, want)
		}
		named := strings.Split(strings.TrimSuffix(strings.TrimPrefix(err.Error(), head), tail), ", ")
		if len(named) != 5 || slices.ContainsFunc(named, func(k string) bool { return !slices.Contains(keys, k) }) {
			t.Errorf("named keys %q, want five of %q", named, keys)
		}
	})

	// Creating a pod that already carries state is forging it too.
	creates := map[string]struct {
		annotations, labels map[string]string
		want                string
	}{
		"create with a watchdog status": {
			annotations: map[string]string{x: ownForgedValue},
			want:        ownWatchdogDenial("pods", "forged", "mallory", ns, ownAnnotationKey(x)),
		},
		"create with the health label": {
			labels: map[string]string{spec.LabelHealth: "info"},
			want:   ownWatchdogDenial("pods", "forged", "mallory", ns, ownHealthLabelKey),
		},
		"create with a data request": {
			annotations: map[string]string{request: ownDataValue},
			want:        ownDataDenial("pods", "forged", "mallory", ns, ownAnnotationKey(request)),
		},
	}
	for name, tc := range creates {
		t.Run(name, func(t *testing.T) {
			p := appPod("forged", tc.annotations, tc.labels)
			p.Namespace = ns
			ownWantDenied(t, mc.Create(ctx, p), tc.want)
		})
	}

	// The same user may write an unrelated annotation of the same pod: the
	// denials are about the keys, not about RBAC on pods.
	if err := mc.Patch(ctx, before.DeepCopy(), ownMergePatch(map[string]any{ownNoteKey: "allowed"}, nil)); err != nil {
		t.Fatalf("patch an unrelated annotation: %v", err)
	}
	want := maps.Clone(before.Annotations)
	want[ownNoteKey] = "allowed"
	ownWantMetadata(ctx, t, pod, want, before.Labels)
}

// TestOwnershipAllowsWhatDoesNotChangeState: the policy is about the state
// keys, not about pod writes in general.
func TestOwnershipAllowsWhatDoesNotChangeState(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	mallory := newOwnUser(t, "mallory")
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(mallory.name), mallory.name)
	web := spec.PrefixWatchdogStatus + "web"
	request := spec.PrefixDataRequest + "models"
	pod := ownCreatePod(ctx, t, ns, appPod("web", map[string]string{web: ownWatchdogValue, request: ownDataValue},
		map[string]string{spec.LabelHealth: "info"}))
	ownWaitForPolicy(ctx, t, mallory, pod)
	mc := mallory.client

	// A patch of an unrelated annotation and label.
	if err := mc.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{ownNoteKey: "patched"}, map[string]any{"app": "web"})); err != nil {
		t.Fatalf("merge patch of an unrelated annotation: %v", err)
	}
	// Server-side apply of an unrelated annotation.
	if err := mc.Apply(ctx, corev1ac.Pod("web", ns).WithAnnotations(map[string]string{ownAppliedKey: "applied"}),
		client.FieldOwner("mallory")); err != nil {
		t.Fatalf("server-side apply of an unrelated annotation: %v", err)
	}
	// A full update carries every state key unchanged.
	p := ownGetPod(ctx, t, pod)
	p.Annotations[ownNoteKey] = "updated"
	if err := mc.Update(ctx, p); err != nil {
		t.Fatalf("update carrying unchanged state keys: %v", err)
	}
	// A pod created without state keys, and a pods/status write that
	// leaves metadata alone.
	if err := mc.Create(ctx, withNamespace(appPod("plain", map[string]string{ownNoteKey: "x"}, nil), ns)); err != nil {
		t.Fatalf("create a plain pod: %v", err)
	}
	if err := mc.Status().Patch(ctx, ownGetPod(ctx, t, pod), client.RawPatch(types.MergePatchType,
		[]byte(`{"status":{"conditions":[{"type":"example.com/Ready","status":"True"}]}}`))); err != nil {
		t.Fatalf("status patch: %v", err)
	}
	ownWantMetadata(ctx, t, pod,
		map[string]string{web: ownWatchdogValue, request: ownDataValue, ownNoteKey: "updated", ownAppliedKey: "applied"},
		map[string]string{spec.LabelHealth: "info", "app": "web"})

	// Any user may create a pod that AutoCrane injects: the mutating
	// webhook writes autocrane.io/injected on CREATE, on the creator's
	// behalf (the validating webhook checks it).
	injected := injectedNamespace(ctx, t)
	ownGrantPodWriter(ctx, t, injected, ownUserSubject(mallory.name), mallory.name)
	app := withNamespace(appPod("app", dataAnnotations(), nil), injected)
	if err := mc.Create(ctx, app); err != nil {
		t.Fatalf("create a pod to inject: %v", err)
	}
	if _, ok := app.Annotations[spec.AnnotationInjected]; !ok {
		t.Errorf("the pod was not injected: %v", app.Annotations)
	}
}

// TestOwnershipWatchdogPoster: the ClusterRole autocrane-watchdog-poster,
// bound in a namespace, allows the watchdog keys there, and nothing more.
func TestOwnershipWatchdogPoster(t *testing.T) {
	ctx := t.Context()
	ownApplyRBAC(ctx, t)
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	poster := newOwnUser(t, "poster")
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(poster.name), poster.name)
	request := spec.PrefixDataRequest + "models"
	pod := ownCreatePod(ctx, t, ns, appPod("web", map[string]string{request: ownDataValue}, nil))
	ownWaitForPolicy(ctx, t, poster, pod)

	ownBindRole(ctx, t, ns, "ClusterRole", "autocrane-watchdog-poster", ownUserSubject(poster.name))
	ownWaitForAccess(ctx, t, poster.name, ns, spec.Domain, "watchdogs", "update")
	pc := poster.client
	web := spec.PrefixWatchdogStatus + "web"

	if err := pc.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{web: ownWatchdogValue}, map[string]any{spec.LabelHealth: "info"})); err != nil {
		t.Fatalf("post a watchdog status: %v", err)
	}
	if err := pc.Apply(ctx, corev1ac.Pod("web", ns).WithAnnotations(map[string]string{spec.PrefixWatchdogStatus + "db": ownWatchdogValue}),
		client.FieldOwner("poster")); err != nil {
		t.Fatalf("apply a watchdog status: %v", err)
	}
	if err := pc.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{web: nil}, nil)); err != nil {
		t.Fatalf("remove a watchdog status: %v", err)
	}
	ownWantDenied(t, pc.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{request: "models v2 sha256:1111"}, nil)),
		ownDataDenial("pods", "web", "poster", ns, ownAnnotationKey(request)))
	ownWantDenied(t, pc.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{spec.PrefixDataStatus + "models": ownDataValue}, nil)),
		ownDataDenial("pods", "web", "poster", ns, ownAnnotationKey(spec.PrefixDataStatus+"models")))
	ownWantMetadata(ctx, t, pod,
		map[string]string{request: ownDataValue, spec.PrefixWatchdogStatus + "db": ownWatchdogValue},
		map[string]string{spec.LabelHealth: "info"})

	// The grant is per namespace.
	other := suite.env.CreateNamespace(ctx, t, nil, nil)
	ownGrantPodWriter(ctx, t, other, ownUserSubject(poster.name), poster.name)
	otherPod := ownCreatePod(ctx, t, other, appPod("web", nil, nil))
	ownWantDenied(t, pc.Patch(ctx, otherPod, ownMergePatch(map[string]any{web: ownWatchdogValue}, nil)),
		ownWatchdogDenial("pods", "web", "poster", other, ownAnnotationKey(web)))
}

// TestOwnershipManagerServiceAccount: AutoCrane's own service account may
// write every state key through the ClusterRoleBinding in config/rbac/; no
// user name is special-cased in the policy.
func TestOwnershipManagerServiceAccount(t *testing.T) {
	ctx := t.Context()
	ownApplyRBAC(ctx, t)
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	// The same user name and groups as the service account's token gives.
	sa := newOwnUser(t, ownManagerUser, "system:serviceaccounts", "system:serviceaccounts:"+ownNamespace)
	// Issue 5 brings the manager's pod rights; here the test grants them.
	ownGrantPodWriter(ctx, t, ns, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "autocrane-manager", Namespace: ownNamespace}, sa.name)
	ownWaitForAccess(ctx, t, sa.name, ns, spec.Domain, "watchdogs", "update")
	ownWaitForAccess(ctx, t, sa.name, ns, spec.Domain, "datadeployments", "update")
	// A plain pod: AutoCrane writes state onto pods it did not inject too.
	pod := ownCreatePod(ctx, t, ns, appPod("web", nil, nil))
	sc := sa.client

	web := spec.PrefixWatchdogStatus + "web"
	request := spec.PrefixDataRequest + "models"
	status := spec.PrefixDataStatus + "models"
	if err := sc.Patch(ctx, pod.DeepCopy(), ownMergePatch(
		map[string]any{web: ownWatchdogValue, request: ownDataValue, status: ownDataValue, spec.AnnotationInjected: ownInjectedValue},
		map[string]any{spec.LabelHealth: "info"})); err != nil {
		t.Fatalf("write state: %v", err)
	}
	ownWantMetadata(ctx, t, pod,
		map[string]string{web: ownWatchdogValue, request: ownDataValue, status: ownDataValue, spec.AnnotationInjected: ownInjectedValue},
		map[string]string{spec.LabelHealth: "info"})
	if err := sc.Status().Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{web: nil, spec.AnnotationInjected: nil}, nil)); err != nil {
		t.Fatalf("remove state through pods/status: %v", err)
	}
	ownWantMetadata(ctx, t, pod,
		map[string]string{request: ownDataValue, status: ownDataValue},
		map[string]string{spec.LabelHealth: "info"})
}

// TestOwnershipStatusAndBinding: pods/status, pods/binding and the
// top-level bindings resource all write a pod's metadata, and the policy
// covers them.
func TestOwnershipStatusAndBinding(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	mallory := newOwnUser(t, "mallory")
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(mallory.name), mallory.name)
	pod := ownCreatePod(ctx, t, ns, appPod("web", nil, nil))
	ownWaitForPolicy(ctx, t, mallory, pod)
	mc := mallory.client
	x := spec.PrefixWatchdogStatus + "x"

	t.Run("pods/status", func(t *testing.T) {
		p := ownGetPod(ctx, t, pod)
		p.Annotations = map[string]string{x: ownForgedValue}
		ownWantDenied(t, mc.Status().Update(ctx, p), ownWatchdogDenial("pods", "web", "mallory", ns, ownAnnotationKey(x)))
		ownWantDenied(t, mc.Status().Patch(ctx, pod.DeepCopy(), ownMergePatch(nil, map[string]any{spec.LabelHealth: "info"})),
			ownWatchdogDenial("pods", "web", "mallory", ns, ownHealthLabelKey))
		ownWantDenied(t, mc.Status().Apply(ctx, corev1ac.Pod("web", ns).WithAnnotations(map[string]string{spec.PrefixDataRequest + "m": ownDataValue}),
			client.FieldOwner("mallory"), client.ForceOwnership),
			ownDataDenial("pods", "web", "mallory", ns, ownAnnotationKey(spec.PrefixDataRequest+"m")))
		// The path is real: pods/status does write metadata.
		if err := mc.Status().Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{ownNoteKey: "via status"}, map[string]any{"via": "status"})); err != nil {
			t.Fatal(err)
		}
		ownWantMetadata(ctx, t, pod, map[string]string{ownNoteKey: "via status"}, map[string]string{"via": "status"})
	})

	t.Run("pods/binding", func(t *testing.T) {
		binding := func(annotations, labels map[string]string) *corev1.Binding {
			return &corev1.Binding{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Annotations: annotations, Labels: labels},
				Target:     corev1.ObjectReference{Kind: "Node", Name: "node-1"},
			}
		}
		ownWantDenied(t, mc.SubResource("binding").Create(ctx, pod.DeepCopy(), binding(map[string]string{x: ownForgedValue}, nil)),
			ownWatchdogDenial("pods", "web", "mallory", ns, ownAnnotationKey(x)))
		// Binding labels reach the pod too (PodTopologyLabelsAdmission,
		// on by default since 1.35).
		ownWantDenied(t, mc.SubResource("binding").Create(ctx, pod.DeepCopy(), binding(nil, map[string]string{spec.LabelHealth: "info"})),
			ownWatchdogDenial("pods", "web", "mallory", ns, ownHealthLabelKey))
		// A Binding is a CREATE, but of an existing pod's metadata:
		// autocrane.io/injected is protected there.
		ownWantDenied(t, mc.SubResource("binding").Create(ctx, pod.DeepCopy(), binding(map[string]string{spec.AnnotationInjected: ownInjectedValue}, nil)),
			ownDataDenial("pods", "web", "mallory", ns, ownAnnotationKey(spec.AnnotationInjected)))
		// The legacy top-level resource: POST /api/v1/namespaces/NS/bindings.
		ownWantDenied(t, mc.Create(ctx, binding(map[string]string{x: ownForgedValue}, nil)),
			ownWatchdogDenial("bindings", "web", "mallory", ns, ownAnnotationKey(x)))

		// The path is real: a Binding's annotations and labels are copied
		// onto the pod.
		if err := mc.SubResource("binding").Create(ctx, pod.DeepCopy(), binding(map[string]string{ownNoteKey: "via binding"}, map[string]string{"via": "binding"})); err != nil {
			t.Fatal(err)
		}
		got := ownGetPod(ctx, t, pod)
		if got.Spec.NodeName != "node-1" || got.Annotations[ownNoteKey] != "via binding" || got.Labels["via"] != "binding" {
			t.Errorf("bound pod: node %q, annotations %v, labels %v", got.Spec.NodeName, got.Annotations, got.Labels)
		}
	})
}

// TestOwnershipSubresourcesThatDropMetadata records what the API server
// does with metadata sent to pods/ephemeralcontainers and pods/resize: it
// drops it (their strategies reset labels and annotations to the stored
// pod's), so the policy does not need to match them. If a Kubernetes release
// changes that, this test fails and the policy must add them.
func TestOwnershipSubresourcesThatDropMetadata(t *testing.T) {
	ctx := t.Context()
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	mallory := newOwnUser(t, "mallory")
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(mallory.name), mallory.name)
	web := spec.PrefixWatchdogStatus + "web"
	annotations := map[string]string{web: ownWatchdogValue}
	labels := map[string]string{spec.LabelHealth: "info"}
	pod := ownCreatePod(ctx, t, ns, appPod("web", annotations, labels))
	ownWaitForPolicy(ctx, t, mallory, pod)

	forge := func(p *corev1.Pod) {
		p.Annotations = map[string]string{spec.PrefixWatchdogStatus + "x": ownForgedValue, spec.PrefixDataRequest + "m": ownDataValue, ownNoteKey: "dropped"}
		p.Labels = map[string]string{spec.LabelHealth: "error", "dropped": "true"}
	}

	t.Run("pods/ephemeralcontainers", func(t *testing.T) {
		p := ownGetPod(ctx, t, pod)
		forge(p)
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "registry.invalid/debug:1"},
		})
		if err := mallory.client.SubResource("ephemeralcontainers").Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		got := ownGetPod(ctx, t, pod)
		var names []string
		for _, c := range got.Spec.EphemeralContainers {
			names = append(names, c.Name)
		}
		if !cmp.Equal(names, []string{"debug"}) {
			t.Errorf("ephemeral containers: %v (the write did not happen)", names)
		}
		ownWantMetadata(ctx, t, pod, annotations, labels)
	})

	t.Run("pods/resize", func(t *testing.T) {
		p := ownGetPod(ctx, t, pod)
		forge(p)
		if err := mallory.client.SubResource("resize").Update(ctx, p); err != nil {
			t.Fatal(err)
		}
		ownWantMetadata(ctx, t, pod, annotations, labels)
	})
}

// TestOwnershipHoldsWhileAutoCraneIsDown: the policy is evaluated inside the
// API server, so it denies forgeries while AutoCrane's webhook server is
// stopped, with its own message.
func TestOwnershipHoldsWhileAutoCraneIsDown(t *testing.T) {
	ctx := t.Context()
	// Out of the mutating webhook's scope (unlabelled namespace, no
	// AutoCrane key at creation), so its failurePolicy Fail does not apply.
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	mallory := newOwnUser(t, "mallory")
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(mallory.name), mallory.name)
	pod := ownCreatePod(ctx, t, ns, appPod("web", map[string]string{ownNoteKey: "x"}, nil))
	ownWaitForPolicy(ctx, t, mallory, pod)

	stop := suite.stopManager
	suite.stopManager = nil
	if err := stop(); err != nil {
		t.Fatalf("stop manager: %v", err)
	}
	t.Cleanup(func() {
		// The manager outlives this test: not t.Context(), which ends with it.
		if err := restartManager(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("restart manager: %v", err)
		}
	})

	// AutoCrane is down: a pod in the webhook's scope cannot be created.
	err := suite.env.Client.Create(ctx, withNamespace(appPod("in-scope", dataAnnotations(), nil), ns))
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "annotated.inject.autocrane.io"`) {
		t.Fatalf("creating an in-scope pod with the webhook server stopped: %v", err)
	}

	x := spec.PrefixWatchdogStatus + "x"
	ownWantDenied(t, mallory.client.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{x: ownForgedValue}, map[string]any{spec.LabelHealth: "info"})),
		ownWatchdogDenial("pods", "web", "mallory", ns, ownAnnotationKey(x), ownHealthLabelKey))
	ownWantDenied(t, mallory.client.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{spec.PrefixDataRequest + "m": ownDataValue}, nil)),
		ownDataDenial("pods", "web", "mallory", ns, ownAnnotationKey(spec.PrefixDataRequest+"m")))
	if err := mallory.client.Patch(ctx, pod.DeepCopy(), ownMergePatch(map[string]any{ownNoteKey: "y"}, nil)); err != nil {
		t.Fatalf("unrelated write with AutoCrane down: %v", err)
	}
	ownWantMetadata(ctx, t, pod, map[string]string{ownNoteKey: "y"}, nil)
}
