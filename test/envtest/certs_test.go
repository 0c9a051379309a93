package envtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/autocrane/autocrane/certs"
	"github.com/autocrane/autocrane/manager"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// webhookCopies are copies of config/webhook's two configurations under
// other names, each entry pointed by URL at a port of the test's choosing
// and scoped to namespaces carrying scopeLabel=id, so other tests' pods
// never reach them. Their names sort before autocrane-mutating, so the API
// server calls them before the suite's own configuration.
type webhookCopies struct {
	id                   string
	mutating, validating string
	scopeLabel           string
	mutatingCfg          *admissionregistrationv1.MutatingWebhookConfiguration
	validatingCfg        *admissionregistrationv1.ValidatingWebhookConfiguration
}

const copyScopeLabel = "autocrane-test-scope"

// installWebhookCopies creates the copies. ports maps a webhook name to the
// port serving it (127.0.0.1); caBundle is set as given (nil: empty).
// They are deleted when t ends.
func installWebhookCopies(ctx context.Context, t *testing.T, prefix string, ports map[string]int, caBundle []byte) *webhookCopies {
	t.Helper()
	id := rand.String(6)
	c := &webhookCopies{
		id: id, scopeLabel: copyScopeLabel,
		mutating:   "autocrane-" + prefix + "-" + id + "-mutating",
		validating: "autocrane-" + prefix + "-" + id + "-validating",
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	smReadManifest(t, "../../config/webhook/manifests.yaml", m)
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	smReadManifest(t, "../../config/webhook/validating.yaml", v)
	scope := metav1.LabelSelectorRequirement{Key: copyScopeLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{id}}
	point := func(name string, cc *admissionregistrationv1.WebhookClientConfig, sel **metav1.LabelSelector) {
		port, ok := ports[name]
		if !ok {
			t.Fatalf("no port for webhook %s", name)
		}
		u := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + *cc.Service.Path
		cc.Service, cc.URL, cc.CABundle = nil, &u, caBundle
		if *sel == nil {
			*sel = &metav1.LabelSelector{}
		}
		(*sel).MatchExpressions = append((*sel).MatchExpressions, scope)
	}
	m.ObjectMeta = metav1.ObjectMeta{Name: c.mutating}
	for i := range m.Webhooks {
		point(m.Webhooks[i].Name, &m.Webhooks[i].ClientConfig, &m.Webhooks[i].NamespaceSelector)
	}
	v.ObjectMeta = metav1.ObjectMeta{Name: c.validating}
	for i := range v.Webhooks {
		point(v.Webhooks[i].Name, &v.Webhooks[i].ClientConfig, &v.Webhooks[i].NamespaceSelector)
	}
	for _, obj := range []client.Object{m, v} {
		if err := suite.env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := suite.env.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s: %v", obj.GetName(), err)
			}
		})
	}
	c.mutatingCfg, c.validatingCfg = m, v
	return c
}

func smReadManifest(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// bundles returns every entry's caBundle of both copies, by entry.
func (c *webhookCopies) bundles(ctx context.Context) (map[string][]byte, error) {
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: c.mutating}, m); err != nil {
		return nil, err
	}
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: c.validating}, v); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, w := range m.Webhooks {
		out[c.mutating+"/"+w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range v.Webhooks {
		out[c.validating+"/"+w.Name] = w.ClientConfig.CABundle
	}
	return out, nil
}

// selfManaged is one manager replica in self-managed mode.
type selfManaged struct {
	mgr         interface{ Elected() <-chan struct{} }
	webhookPort int
	probes      string
	metrics     *prometheus.Registry
}

// smStart runs a manager in self-managed mode, its Secret and
// lease in namespace ns, stopped when t ends.
func smStart(ctx context.Context, t *testing.T, ns string, copies *webhookCopies, webhookPort int, policy certs.Policy, leaderElection bool) *selfManaged {
	t.Helper()
	reg := prometheus.NewRegistry()
	probes := freeAddr(t)
	mgr, err := manager.New(ctx, suite.env.Config, manager.Options{
		WebhookHost:            "127.0.0.1",
		WebhookPort:            webhookPort,
		MetricsBindAddress:     "0",
		HealthProbeBindAddress: probes,
		LeaderElection:         leaderElection,
		Namespace:              ns,
		Injector:               suite.config,
		MetricsRegistry:        reg,
		Logger:                 testLogger(),
		Controllers:            manager.ControllerOptions{Disabled: true},
		CertMode:               manager.CertModeSelfManaged,
		SelfManagedCerts: manager.SelfManagedCerts{
			ExtraSANs:                      []string{"127.0.0.1"},
			MutatingWebhookConfiguration:   copies.mutating,
			ValidatingWebhookConfiguration: copies.validating,
			Policy:                         policy,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(90 * time.Second):
			t.Error("manager did not stop within 90s")
		}
	})
	return &selfManaged{mgr: mgr, webhookPort: webhookPort, probes: probes, metrics: reg}
}

func smFreePort(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// smReadSecret returns the parsed self-managed Secret, or an error saying
// why it is not usable yet.
func smReadSecret(ctx context.Context, ns string) (certs.State, error) {
	var s corev1.Secret
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: manager.DefaultCertSecretName}, &s); err != nil {
		return certs.State{}, err
	}
	st := certs.Parse(s.Data, s.Annotations)
	if st.CA == nil || st.Serving == nil {
		return st, fmt.Errorf("the Secret lacks a CA or a serving certificate: %v %v", st.CAErr, st.ServingErr)
	}
	return st, nil
}

// smWaitForPublishedBundle waits until every entry of the copies trusts
// exactly what the Secret holds, and returns that bundle.
func smWaitForPublishedBundle(ctx context.Context, t *testing.T, ns string, copies *webhookCopies) []byte {
	t.Helper()
	var bundle []byte
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		st, err := smReadSecret(ctx, ns)
		if err != nil {
			return false, err
		}
		bundle = certs.TrustBundle(st)
		got, err := copies.bundles(ctx)
		if err != nil {
			return false, err
		}
		for name, b := range got {
			if !bytes.Equal(b, bundle) {
				return false, fmt.Errorf("%s does not trust the Secret's CA yet", name)
			}
		}
		return true, nil
	})
	return bundle
}

// smServedLeaf handshakes with a local webhook port, verifying against
// bundle for 127.0.0.1 as the API server does.
func smServedLeaf(port int, bundle []byte) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// smCanaryPod asks for the watchdoghealthz canary: injected without a data
// repository.
func smCanaryPod() *corev1.Pod {
	p := appPod("", map[string]string{spec.KeyMinReadySeconds: "30"}, nil)
	p.GenerateName = "canary-"
	return p
}

// smCreateInjected creates a canary pod in ns (dry run when dryRun) and
// returns an error unless it was admitted and came back injected.
func smCreateInjected(ctx context.Context, ns string, dryRun bool) error {
	p := smCanaryPod()
	p.Namespace = ns
	var opts []client.CreateOption
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := suite.env.Client.Create(ctx, p, opts...); err != nil {
		return err
	}
	if p.Annotations[spec.AnnotationInjected] == "" {
		return errors.New("admitted but not injected")
	}
	return nil
}

func smReadyz(addr string) (string, error) {
	resp, err := http.Get("http://" + addr + "/readyz?verbose") //nolint:noctx // loopback test server
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("readyz: %d\n%s", resp.StatusCode, b)
	}
	return string(b), nil
}

// certsFixture is two self-managed replicas serving copies of the
// webhook configurations: the namespace-label entry and the pods'
// validation on replica A, the annotation entry and the rest on replica B.
type certsFixture struct {
	ownNS, labelledNS, annotatedNS string
	copies                         *webhookCopies
	a, b                           *selfManaged
}

func smNewFixture(ctx context.Context, t *testing.T, policy certs.Policy) *certsFixture {
	t.Helper()
	f := &certsFixture{ownNS: suite.env.CreateNamespace(ctx, t, nil, nil)}
	portA, portB := smFreePort(t), smFreePort(t)
	f.copies = installWebhookCopies(ctx, t, "certs", map[string]int{
		"namespace.inject.autocrane.io":   portA,
		"pods.validate.autocrane.io":      portA,
		"annotated.inject.autocrane.io":   portB,
		"workloads.validate.autocrane.io": portB,
		"jobs.validate.autocrane.io":      portB,
		"cronjobs.validate.autocrane.io":  portB,
	}, nil)
	f.labelledNS = suite.env.CreateNamespace(ctx, t,
		map[string]string{spec.LabelInject: spec.InjectEnabled, copyScopeLabel: f.copies.id}, nil)
	f.annotatedNS = suite.env.CreateNamespace(ctx, t, map[string]string{copyScopeLabel: f.copies.id}, nil)
	f.a = smStart(ctx, t, f.ownNS, f.copies, portA, policy, true)
	f.b = smStart(ctx, t, f.ownNS, f.copies, portB, policy, true)
	return f
}

// TestSelfManagedCertificates: two replicas with leader election; the
// leader creates the Secret and fills every caBundle, both replicas
// (leader or not) serve the Secret's certificate, the API server really
// calls both, and a deleted Secret is recreated.
func TestSelfManagedCertificates(t *testing.T) {
	ctx := t.Context()
	f := smNewFixture(ctx, t, certs.Policy{})
	bundle := smWaitForPublishedBundle(ctx, t, f.ownNS, f.copies)
	st, err := smReadSecret(ctx, f.ownNS)
	if err != nil {
		t.Fatal(err)
	}

	// Exactly one replica leads; both serve the Secret's certificate.
	var leaders int
	for _, r := range []*selfManaged{f.a, f.b} {
		select {
		case <-r.mgr.Elected():
			leaders++
		default:
		}
	}
	if leaders != 1 {
		t.Errorf("%d replicas lead, want 1", leaders)
	}
	for name, r := range map[string]*selfManaged{"A": f.a, "B": f.b} {
		framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
			leaf, err := smServedLeaf(r.webhookPort, bundle)
			if err != nil {
				return false, fmt.Errorf("replica %s: %w", name, err)
			}
			return leaf.Equal(st.Serving.Cert), nil
		})
		framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
			body, err := smReadyz(r.probes)
			return err == nil && strings.Contains(body, "[+]"+manager.WebhookCertificateCheck+" ok"), err
		})
		smCheckExpiryMetric(t, r.metrics, st.Serving.Cert.NotAfter)
	}

	// The API server calls replica A (namespace label) and B (annotation).
	for _, ns := range []string{f.labelledNS, f.annotatedNS} {
		framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
			return true, smCreateInjected(ctx, ns, false)
		})
	}

	// A deleted Secret is recreated with a new CA, published, and served.
	if err := suite.env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Namespace: f.ownNS, Name: manager.DefaultCertSecretName}}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		now, err := smReadSecret(ctx, f.ownNS)
		if err != nil {
			return false, err
		}
		return !now.CA.Cert.Equal(st.CA.Cert), nil
	})
	smWaitForPublishedBundle(ctx, t, f.ownNS, f.copies)
	for _, ns := range []string{f.labelledNS, f.annotatedNS} {
		framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
			return true, smCreateInjected(ctx, ns, true)
		})
	}
}

func smCheckExpiryMetric(t *testing.T, reg *prometheus.Registry, want time.Time) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == certs.ExpiryMetricName && len(f.GetMetric()) == 1 {
			if got := f.GetMetric()[0].GetGauge().GetValue(); got != float64(want.Unix()) {
				t.Errorf("%s = %v, want %d", certs.ExpiryMetricName, got, want.Unix())
			}
			return
		}
	}
	t.Errorf("%s is not exported", certs.ExpiryMetricName)
}

// TestSelfManagedRotationFailsNoAdmission shortens the lifetimes to
// seconds and creates pods through both replicas without pause while the
// leader renews serving certificates and rotates the CA: not one admission
// may fail, and every pod must come back injected.
func TestSelfManagedRotationFailsNoAdmission(t *testing.T) {
	ctx := t.Context()
	policy := certs.Policy{CALifetime: 45 * time.Second, ServingLifetime: 12 * time.Second, CAOverlap: 4 * time.Second}
	f := smNewFixture(ctx, t, policy)
	smWaitForPublishedBundle(ctx, t, f.ownNS, f.copies)
	// Until the first pod goes through, the API server may not have seen
	// the first bundle yet; that is installation, not rotation.
	for _, ns := range []string{f.labelledNS, f.annotatedNS} {
		framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
			return true, smCreateInjected(ctx, ns, true)
		})
	}
	first, err := smReadSecret(ctx, f.ownNS)
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(150 * time.Second)
	var (
		created, failed    int
		failures           []string
		servings           = map[string]bool{}
		caRotated, dropped bool
	)
	for !(caRotated && dropped && len(servings) >= 4) {
		if time.Now().After(deadline) {
			t.Fatalf("no full CA rotation and 4 serving certificates within 150s (CA rotated %v, previous dropped %v, %d serving certificates)",
				caRotated, dropped, len(servings))
		}
		for _, ns := range []string{f.labelledNS, f.annotatedNS} {
			created++
			if err := smCreateInjected(ctx, ns, true); err != nil {
				failed++
				if len(failures) < 10 {
					failures = append(failures, fmt.Sprintf("%s: %v", time.Now().Format(time.RFC3339Nano), err))
				}
			}
		}
		st, err := smReadSecret(ctx, f.ownNS)
		if err != nil {
			t.Fatalf("the Secret became unusable: %v", err)
		}
		servings[string(st.Serving.Cert.Raw)] = true
		if !st.CA.Cert.Equal(first.CA.Cert) {
			caRotated = true
			dropped = dropped || st.PreviousCA == nil
		}
		time.Sleep(20 * time.Millisecond) // pacing, not synchronization
	}
	t.Logf("%d admissions through %d serving certificates and a CA rotation, %d failed", created, len(servings), failed)
	if failed > 0 {
		t.Errorf("%d of %d admissions failed during rotations; first ones:\n%s", failed, created, strings.Join(failures, "\n"))
	}
}
