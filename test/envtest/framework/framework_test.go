package framework_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/test/envtest/framework"
)

// startEnv starts an Env for one test and stops it when the test ends.
// Without KUBEBUILDER_ASSETS, Start's error says how to set it; the test fails
// rather than skips, so a misconfigured run cannot pass silently.
func startEnv(t *testing.T, opts framework.Options) *framework.Env {
	t.Helper()
	start := time.Now()
	env, err := framework.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		start := time.Now()
		if err := env.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		t.Logf("Stop took %s", time.Since(start).Round(time.Millisecond))
		if err := env.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
	return env
}

func TestStartWithoutAssets(t *testing.T) {
	t.Setenv(framework.AssetsEnvVar, "")
	env, err := framework.Start(t.Context(), framework.Options{})
	if err == nil {
		_ = env.Stop()
		t.Fatal("Start succeeded without KUBEBUILDER_ASSETS")
	}
	for _, want := range []string{framework.AssetsEnvVar, "make test", "hack/envtest-assets.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error %q does not mention %q", err, want)
		}
	}
}

// TestControllerManager proves that the controller manager really runs the
// workload controllers: a Deployment applied with kubectl gets a ReplicaSet,
// which gets its Pods.
func TestControllerManager(t *testing.T) {
	ctx := t.Context()
	env := startEnv(t, framework.Options{ControllerManager: true})
	ns := env.CreateNamespace(ctx, t, nil, nil)

	manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %s
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: pause
          image: registry.invalid/pause:1
`, ns)
	if _, _, err := env.Kubectl(ctx, strings.NewReader(manifest), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	var deploy appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &deploy); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	framework.Eventually(ctx, t, 30*time.Second, func() (bool, error) {
		rs, err := ownedReplicaSet(ctx, env.Client, ns, deploy.UID)
		if err != nil {
			return false, err
		}
		var pods corev1.PodList
		if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err
		}
		owned := 0
		for i := range pods.Items {
			if ref := metav1.GetControllerOf(&pods.Items[i]); ref != nil && ref.UID == rs.UID {
				owned++
			}
		}
		if owned != 2 {
			return false, fmt.Errorf("ReplicaSet %s owns %d Pods, want 2", rs.Name, owned)
		}
		return true, nil
	})
	t.Logf("Deployment -> ReplicaSet -> 2 Pods took %s", time.Since(start).Round(time.Millisecond))
}

// ownedReplicaSet returns the ReplicaSet in ns controlled by owner.
func ownedReplicaSet(ctx context.Context, c client.Client, ns string, owner types.UID) (*appsv1.ReplicaSet, error) {
	var list appsv1.ReplicaSetList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.UID == owner {
			return &list.Items[i], nil
		}
	}
	return nil, errors.New("no ReplicaSet controlled by the Deployment yet")
}

// TestEnv covers the parts that need no controller manager.
func TestEnv(t *testing.T) {
	manifest := filepath.Join("testdata", "validating-webhook.yaml")
	env := startEnv(t, framework.Options{WebhookManifests: []string{manifest}})

	t.Run("webhook manifest", func(t *testing.T) { testWebhookManifest(t, env) })
	t.Run("AddUser", func(t *testing.T) { testAddUser(t, env) })
	t.Run("Kubectl error", func(t *testing.T) {
		_, stderr, err := env.Kubectl(t.Context(), nil, "get", "no-such-kind")
		if err == nil {
			t.Fatal("kubectl get no-such-kind succeeded")
		}
		for _, want := range []string{"get no-such-kind", strings.TrimSpace(stderr)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
}

// testWebhookManifest checks what envtest made of a Service-based webhook
// configuration, and that the API server calls the local webhook server
// under the configured selectors and match conditions.
func testWebhookManifest(t *testing.T, env *framework.Env) {
	ctx := t.Context()
	opts := env.Environment.WebhookInstallOptions
	hostPort := net.JoinHostPort(opts.LocalServingHost, strconv.Itoa(opts.LocalServingPort))

	var installed admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "framework-test"}, &installed); err != nil {
		t.Fatal(err)
	}
	hook := installed.Webhooks[0]
	if hook.ClientConfig.Service != nil || hook.ClientConfig.URL == nil {
		t.Fatalf("clientConfig not rewritten to a URL: %+v", hook.ClientConfig)
	}
	t.Logf("installed clientConfig.url: %s", *hook.ClientConfig.URL)
	u, err := url.Parse(*hook.ClientConfig.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != hostPort {
		t.Errorf("clientConfig.url = %s, want https://%s/...", u, hostPort)
	}
	if len(hook.ClientConfig.CABundle) == 0 {
		t.Error("clientConfig.caBundle is empty")
	}
	if hook.NamespaceSelector == nil || len(hook.NamespaceSelector.MatchLabels) != 1 ||
		hook.ObjectSelector == nil || len(hook.ObjectSelector.MatchExpressions) != 1 ||
		len(hook.MatchConditions) != 1 {
		t.Errorf("selectors or matchConditions lost: namespaceSelector=%v objectSelector=%v matchConditions=%v",
			hook.NamespaceSelector, hook.ObjectSelector, hook.MatchConditions)
	}

	calls := serveDenyingWebhook(t, env)

	enabled := map[string]string{"framework-test.autocrane.io/webhook": "enabled"}
	deny := map[string]string{"framework-test.autocrane.io/deny": ""}
	inScope := env.CreateNamespace(ctx, t, enabled, nil)
	outOfScope := env.CreateNamespace(ctx, t, nil, nil)

	// The API server picks up new webhook configurations asynchronously.
	framework.Eventually(ctx, t, 10*time.Second, func() (bool, error) {
		err := createConfigMap(t, env, inScope, deny)
		if err == nil {
			return false, errors.New("ConfigMap admitted, webhook not called yet")
		}
		if !strings.Contains(err.Error(), "denied by framework test") {
			return false, err
		}
		return true, nil
	})
	if got := calls.paths(); len(got) == 0 || got[len(got)-1] != "/validate-configmap" {
		t.Errorf("webhook server saw request paths %q, want /validate-configmap", got)
	}

	before := len(calls.paths())
	if err := createConfigMap(t, env, inScope, nil); err != nil {
		t.Errorf("ConfigMap without the deny annotation (matchConditions false): %v", err)
	}
	if err := createConfigMap(t, env, outOfScope, deny); err != nil {
		t.Errorf("ConfigMap in a namespace outside namespaceSelector: %v", err)
	}
	if after := len(calls.paths()); after != before {
		t.Errorf("webhook called %d more times for objects out of its scope", after-before)
	}
}

func createConfigMap(t *testing.T, env *framework.Env, ns string, annotations map[string]string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "cm-", Namespace: ns, Annotations: annotations,
	}}
	return env.Client.Create(t.Context(), cm)
}

// webhookCalls records the request paths a webhook server received.
type webhookCalls struct {
	mu  sync.Mutex
	all []string
}

func (c *webhookCalls) add(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, path)
}

func (c *webhookCalls) paths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.all...)
}

// serveDenyingWebhook serves, where envtest pointed the webhook
// configurations, a webhook that denies every request. It stops before the
// Env does, as registered cleanups run last-in first-out.
func serveDenyingWebhook(t *testing.T, env *framework.Env) *webhookCalls {
	t.Helper()
	opts := env.Environment.WebhookInstallOptions
	cert, err := tls.LoadX509KeyPair(
		filepath.Join(opts.LocalServingCertDir, "tls.crt"),
		filepath.Join(opts.LocalServingCertDir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(opts.LocalServingHost, strconv.Itoa(opts.LocalServingPort)))
	if err != nil {
		t.Fatal(err)
	}
	calls := &webhookCalls{}
	srv := &http.Server{
		// No ServeMux on purpose: record the path exactly as sent.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.add(r.URL.Path)
			var review admissionv1.AdmissionReview
			if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
				http.Error(w, "bad AdmissionReview", http.StatusBadRequest)
				return
			}
			review.Response = &admissionv1.AdmissionResponse{
				UID:     review.Request.UID,
				Allowed: false,
				Result:  &metav1.Status{Message: "denied by framework test", Code: http.StatusForbidden},
			}
			review.Request = nil
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(&review)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return calls
}

// testAddUser checks that a user from AddUser is authenticated under its own
// name and groups: without RBAC it is forbidden, through kubectl too.
func testAddUser(t *testing.T, env *framework.Env) {
	ctx := t.Context()
	cfg, kubeconfig, err := env.AddUser("system:serviceaccount:demo:plain", "demo-group")
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil || kubeconfig == "" {
		t.Fatalf("AddUser returned config %v, kubeconfig %q", cfg, kubeconfig)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	err = c.List(ctx, &corev1.PodList{}, client.InNamespace("default"))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("List pods as an unprivileged user: got %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), `"system:serviceaccount:demo:plain"`) {
		t.Errorf("Forbidden error does not name the user: %v", err)
	}
	out, _, err := env.Kubectl(ctx, nil, "--kubeconfig="+kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "demo-group") {
		t.Errorf("kubectl auth whoami groups = %s, want demo-group among them", out)
	}
}
