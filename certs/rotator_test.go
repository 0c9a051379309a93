package certs

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

var testSecret = types.NamespacedName{Namespace: "autocrane-system", Name: "autocrane-webhook-tls"}

func testConfigs() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	path := "/mutate-v1-pod"
	ref := func() admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: "autocrane-system", Name: "autocrane-webhook", Path: &path}}
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultMutatingWebhookConfiguration},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "namespace.inject.autocrane.io", ClientConfig: ref()},
			{Name: "annotated.inject.autocrane.io", ClientConfig: ref()},
		},
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultValidatingWebhookConfiguration},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{Name: "pods.validate.autocrane.io", ClientConfig: ref()},
			{Name: "workloads.validate.autocrane.io", ClientConfig: ref()},
		},
	}
	return m, v
}

func newTestRotator(t *testing.T, c client.Client, clk *clocktesting.FakeClock, p Policy) *Rotator {
	t.Helper()
	r, err := NewRotator(RotatorOptions{
		Client:   c,
		Secret:   testSecret,
		Webhooks: WebhookConfigurations{Mutating: DefaultMutatingWebhookConfiguration, Validating: DefaultValidatingWebhookConfiguration},
		Policy:   p,
		SANs:     testSANs(t),
		Clock:    clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

// version is one write of the Secret as the rotator left it.
type version struct {
	at      time.Time
	serving *x509.Certificate
	bundle  []byte
	action  Action
}

// TestRotatorNeverBreaksALaggingReader runs the rotator for two simulated
// years with the default policy and checks, after every write, the
// property that makes rotations invisible to admission: a replica still
// serving an older certificate, or an API server still holding an older
// caBundle, keeps working as long as it lags by less than one overlap.
func TestRotatorNeverBreaksALaggingReader(t *testing.T) {
	ctx := t.Context()
	m, v := testConfigs()
	c := fakeClient(t, m, v)
	clk := clocktesting.NewFakeClock(t0)
	policy := Policy{}.WithDefaults()
	r := newTestRotator(t, c, clk, policy)

	var history []version
	actions := map[Action]int{}
	for clk.Now().Before(t0.Add(2 * 365 * day)) {
		d, err := r.Reconcile(ctx)
		if err != nil {
			t.Fatalf("at %s: %v", clk.Now(), err)
		}
		if d.Action == ActionNone {
			if d.RequeueAfter <= 0 {
				t.Fatalf("at %s: nothing to do but RequeueAfter = %s (%s)", clk.Now(), d.RequeueAfter, d.Reason)
			}
			clk.Step(d.RequeueAfter)
			continue
		}
		actions[d.Action]++
		cur := readVersion(t, c, clk.Now(), d.Action)
		checkBundlePublished(t, c, cur.bundle)
		for i, old := range history {
			// old was replaced at history[i+1].at (or now): a reader that
			// saw it lags by now minus that time.
			replaced := cur.at
			if i+1 < len(history) {
				replaced = history[i+1].at
			}
			if cur.at.Sub(replaced) >= policy.CAOverlap {
				continue
			}
			if err := verifies(old.serving, cur.bundle, cur.at); err != nil {
				t.Errorf("at %s after %s: the certificate of the %s write fails the new bundle: %v", cur.at, d.Action, old.action, err)
			}
			if err := verifies(cur.serving, old.bundle, cur.at); err != nil {
				t.Errorf("at %s after %s: the new certificate fails the bundle of the %s write: %v", cur.at, d.Action, old.action, err)
			}
		}
		history = append(history, cur)
		if len(history) > 10000 {
			t.Fatal("more than 10000 writes: the rotator loops")
		}
	}
	// Two years: one create, CA rotations at about 243 and 486 days, and
	// a serving renewal every 60 days or so.
	want := map[Action]int{ActionCreate: 1, ActionStartCARotation: 2, ActionMarkNextCAPublished: 2, ActionPromoteNextCA: 2, ActionDropPreviousCA: 2}
	for a, n := range want {
		if actions[a] != n {
			t.Errorf("%s happened %d times, want %d (all: %v)", a, actions[a], n, actions)
		}
	}
	if n := actions[ActionIssueServing]; n < 8 || n > 14 {
		t.Errorf("serving renewals = %d, want about 11 (all: %v)", n, actions)
	}
}

func readVersion(t *testing.T, c client.Client, now time.Time, a Action) version {
	t.Helper()
	var secret corev1.Secret
	if err := c.Get(t.Context(), testSecret, &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type = %q, want %q", secret.Type, corev1.SecretTypeTLS)
	}
	s := Parse(secret.Data, secret.Annotations)
	if s.CA == nil || s.Serving == nil {
		t.Fatalf("after %s the Secret lacks a CA or a serving certificate: %v %v", a, s.CAErr, s.ServingErr)
	}
	return version{at: now, serving: s.Serving.Cert, bundle: TrustBundle(s), action: a}
}

// checkBundlePublished: every entry of both configurations holds bundle.
func checkBundlePublished(t *testing.T, c client.Client, bundle []byte) {
	t.Helper()
	m, v := testConfigs()
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(m), m); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(v), v); err != nil {
		t.Fatal(err)
	}
	for _, e := range append(webhookEntries(m), webhookEntries(v)...) {
		if !bytes.Equal(e.caBundle, bundle) {
			t.Errorf("webhook %s does not hold the Secret's bundle", e.name)
		}
	}
}

func TestRotatorRepairsAnEditedCABundle(t *testing.T) {
	ctx := t.Context()
	m, v := testConfigs()
	c := fakeClient(t, m, v)
	clk := clocktesting.NewFakeClock(t0)
	r := newTestRotator(t, c, clk, Policy{})
	if _, err := r.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	want := readVersion(t, c, clk.Now(), ActionCreate).bundle

	// Someone re-applies the configuration without a caBundle.
	m, _ = testConfigs()
	if err := c.Get(ctx, client.ObjectKeyFromObject(m), m); err != nil {
		t.Fatal(err)
	}
	m.Webhooks[1].ClientConfig.CABundle = nil
	if err := c.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	d, err := r.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != ActionNone {
		t.Errorf("action = %s, want none: only the bundle needed repair", d.Action)
	}
	checkBundlePublished(t, c, want)
}

func TestRotatorWithoutWebhookConfigurations(t *testing.T) {
	c := fakeClient(t)
	r := newTestRotator(t, c, clocktesting.NewFakeClock(t0), Policy{})
	d, err := r.Reconcile(t.Context())
	if err != nil {
		t.Fatalf("a missing configuration must not fail the pass: %v", err)
	}
	if d.Action != ActionCreate {
		t.Fatalf("action = %s, want %s", d.Action, ActionCreate)
	}
}

func TestCABundlePatchTouchesOnlyDifferingEntries(t *testing.T) {
	bundle := []byte("B")
	p, err := caBundlePatch([]webhookEntry{{"a", []byte("B")}, {"b", nil}, {"c", []byte("old")}}, bundle)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"op":"test","path":"/webhooks/1/name","value":"b"},{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"Qg=="},` +
		`{"op":"test","path":"/webhooks/2/name","value":"c"},{"op":"add","path":"/webhooks/2/clientConfig/caBundle","value":"Qg=="}]`
	if string(p) != want {
		t.Errorf("patch =\n%s\nwant\n%s", p, want)
	}
	if p, _ := caBundlePatch([]webhookEntry{{"a", bundle}}, bundle); p != nil {
		t.Errorf("patch for equal bundles = %s, want none", p)
	}
}

func TestNewRotatorRejectsBadOptions(t *testing.T) {
	c := fakeClient(t)
	good := RotatorOptions{Client: c, Secret: testSecret, SANs: testSANs(t)}
	tests := map[string]func(*RotatorOptions){
		"no client":          func(o *RotatorOptions) { o.Client = nil },
		"no Secret name":     func(o *RotatorOptions) { o.Secret.Name = "" },
		"no names":           func(o *RotatorOptions) { o.SANs = SANs{} },
		"an overlap too big": func(o *RotatorOptions) { o.Policy = Policy{CALifetime: time.Hour, CAOverlap: time.Hour} },
	}
	if _, err := NewRotator(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			o := good
			mutate(&o)
			if _, err := NewRotator(o); err == nil {
				t.Fatal("NewRotator = nil error")
			}
		})
	}
}
