package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// certificate is the part of a cert-manager Certificate the tests read.
type certificate struct {
	Spec struct {
		IsCA        bool     `json:"isCA"`
		SecretName  string   `json:"secretName"`
		DNSNames    []string `json:"dnsNames"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		PrivateKey  struct {
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// checkCertManagerMode: a CA Issuer signs the serving certificate the
// Deployment mounts, whose DNS names are the Service's, and cainjector is
// asked to fill both webhook configurations.
func checkCertManagerMode(t *testing.T, m *manifest) {
	t.Helper()
	d := m.deployment(t)
	c := managerContainer(t, d)
	if v, _ := flag(c.Args, "cert-mode"); v != string(certManager) {
		t.Errorf("--cert-mode=%q, want %s", v, certManager)
	}
	vol := certVolume(t, d)
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != tlsSecret || !vol.Mount.ReadOnly {
		t.Errorf("cert dir volume %+v, want Secret %s mounted read-only", vol, tlsSecret)
	}

	var serving, ca certificate
	decode(t, m.find(t, "Certificate", servingCert), &serving)
	if serving.Spec.SecretName != tlsSecret {
		t.Errorf("Certificate %s secretName %q, want %s", servingCert, serving.Spec.SecretName, tlsSecret)
	}
	wantDNS := []string{webhookService + "." + namespace + ".svc", webhookService + "." + namespace + ".svc.cluster.local"}
	if !slices.Equal(serving.Spec.DNSNames, wantDNS) {
		t.Errorf("Certificate %s dnsNames %q, want %q", servingCert, serving.Spec.DNSNames, wantDNS)
	}
	if serving.Spec.PrivateKey.RotationPolicy != "Always" {
		t.Errorf("Certificate %s rotationPolicy %q, want Always", servingCert, serving.Spec.PrivateKey.RotationPolicy)
	}
	duration, err1 := time.ParseDuration(serving.Spec.Duration)
	renew, err2 := time.ParseDuration(serving.Spec.RenewBefore)
	// The expiry alert fires at 30 days left: renewal must start before.
	if err := errors.Join(err1, err2); err != nil || renew <= 30*24*time.Hour || renew >= duration {
		t.Errorf("Certificate %s duration %s renewBefore %s (%v): want 30 days < renewBefore < duration",
			servingCert, serving.Spec.Duration, serving.Spec.RenewBefore, err)
	}

	// serving <- CA Issuer (the CA's Secret) <- CA Certificate <- self-signed Issuer.
	if serving.Spec.IssuerRef.Kind != "Issuer" {
		t.Fatalf("Certificate %s issuer kind %q, want Issuer", servingCert, serving.Spec.IssuerRef.Kind)
	}
	caIssuer := m.find(t, "Issuer", serving.Spec.IssuerRef.Name)
	caSecret, _, _ := unstructured.NestedString(caIssuer.Object, "spec", "ca", "secretName")
	if caSecret == "" {
		t.Fatalf("Issuer %s is not a CA Issuer", caIssuer.GetName())
	}
	caCert := certificateWithSecret(t, m, caSecret)
	decode(t, caCert, &ca)
	if !ca.Spec.IsCA {
		t.Errorf("Certificate %s (Secret %s) is not a CA", caCert.GetName(), caSecret)
	}
	root := m.find(t, "Issuer", ca.Spec.IssuerRef.Name)
	if _, ok, _ := unstructured.NestedMap(root.Object, "spec", "selfSigned"); !ok || ca.Spec.IssuerRef.Kind != "Issuer" {
		t.Errorf("the CA's issuer %s is not a self-signed Issuer", root.GetName())
	}

	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		cfgs := m.all(kind)
		if len(cfgs) != 1 {
			t.Fatalf("%d %s objects, want 1", len(cfgs), kind)
		}
		if got, want := cfgs[0].GetAnnotations()[injectCAFrom], namespace+"/"+servingCert; got != want {
			t.Errorf("%s %s: %s=%q, want %q", kind, cfgs[0].GetName(), injectCAFrom, got, want)
		}
	}
}

func certificateWithSecret(t *testing.T, m *manifest, secret string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range m.all("Certificate") {
		if s, _, _ := unstructured.NestedString(o.Object, "spec", "secretName"); s == secret {
			return o
		}
	}
	t.Fatalf("no Certificate writes Secret %s", secret)
	return nil
}

// checkSelfManagedMode: no cert-manager objects or annotations, the flags
// name the Service and Secret, and the pod does not wait for the Secret
// that only the running manager creates.
func checkSelfManagedMode(t *testing.T, m *manifest) {
	t.Helper()
	for _, o := range m.objs {
		if strings.HasSuffix(o.GroupVersionKind().Group, "cert-manager.io") {
			t.Errorf("%s %s: cert-manager objects in the self-managed mode", o.GetKind(), o.GetName())
		}
		if _, ok := o.GetAnnotations()[injectCAFrom]; ok {
			t.Errorf("%s %s carries %s", o.GetKind(), o.GetName(), injectCAFrom)
		}
	}
	d := m.deployment(t)
	c := managerContainer(t, d)
	for name, want := range map[string]string{"cert-mode": string(selfManaged), "cert-secret-name": tlsSecret, "webhook-service-name": webhookService} {
		if v, _ := flag(c.Args, name); v != want {
			t.Errorf("--%s=%q, want %q", name, v, want)
		}
	}
	vol := certVolume(t, d)
	if vol == nil || vol.EmptyDir == nil || vol.Secret != nil {
		t.Errorf("cert dir volume %+v, want an emptyDir", vol)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("volume %s mounts a Secret: the pod would wait for it", v.Name)
		}
	}
}

// checkE2E: nothing is pulled, neither the manager nor what it injects.
func checkE2E(t *testing.T, m *manifest) {
	t.Helper()
	c := managerContainer(t, m.deployment(t))
	if c.Image != "autocrane:dev" || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %s pull policy %s, want autocrane:dev, Never", c.Image, c.ImagePullPolicy)
	}
	if v, _ := flag(c.Args, "image-pull-policy"); v != "Never" {
		t.Errorf("--image-pull-policy=%q, want Never", v)
	}
}

// TestLeaseNameMatchesManager: the leader-election Role names the Lease the
// manager uses (manager/manager.go), or the replicas could not elect one.
func TestLeaseNameMatchesManager(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "manager", "manager.go"))
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`LeaderElectionID:\s*"([^"]+)"`).FindSubmatch(src)
	if match == nil {
		t.Fatal("manager/manager.go sets no LeaderElectionID")
	}
	m := render(t, kubectlPath(t), "default")
	role := m.find(t, "Role", "autocrane-manager-leader-election")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	var named []string
	for _, r := range rules {
		names, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resourceNames")
		named = append(named, names...)
	}
	if !slices.Equal(named, []string{string(match[1])}) {
		t.Errorf("leader election Role names leases %q, the manager uses %q", named, match[1])
	}
}

// TestSamplesRender: config/samples renders and its pod templates use the
// image the install ships.
func TestSamplesRender(t *testing.T) {
	m := render(t, kubectlPath(t), "samples")
	deployments := m.all("Deployment")
	if len(deployments) == 0 {
		t.Fatal("no Deployment in config/samples")
	}
	for _, o := range deployments {
		d := &appsv1.Deployment{}
		decode(t, o, d)
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Image != "autocrane:dev" {
				t.Errorf("sample %s container %s image %q, want autocrane:dev", d.Name, c.Name, c.Image)
			}
		}
	}
}
