package envtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/certs"
	"github.com/autocrane/autocrane/cli"
	"github.com/autocrane/autocrane/manager"
	"github.com/autocrane/autocrane/spec"
	"github.com/autocrane/autocrane/test/envtest/framework"
)

// doctorInstallRBAC installs the manager's RBAC as it ships (config/rbac,
// config/rbac/manager and the self-managed mode's rules), bound to
// autocrane-system/autocrane-manager, plus a binding for the test's
// webhook configuration copies (the shipped rules name the real ones).
func doctorInstallRBAC(ctx context.Context, t *testing.T, copies *webhookCopies) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ownNamespace}}
	if err := suite.env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"apply", "-k", "../../config/rbac"},
		{"apply", "-k", "../../config/rbac/manager"},
		{"apply", "-f", "../../config/selfmanaged/rbac.yaml"},
	} {
		if _, stderr, err := suite.env.Kubectl(ctx, nil, args...); err != nil {
			t.Fatalf("kubectl %v: %v: %s", args, err, stderr)
		}
	}
	name := "autocrane-test-" + copies.id
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
			ResourceNames: []string{copies.mutating}, Verbs: []string{"get", "list", "watch", "patch"}},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations"},
			ResourceNames: []string{copies.validating}, Verbs: []string{"get", "list", "watch", "patch"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "autocrane-manager", Namespace: ownNamespace}}}
	for _, obj := range []client.Object{role, binding} {
		if err := suite.env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := suite.env.Client.Delete(context.WithoutCancel(ctx), obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s: %v", obj.GetName(), err)
			}
		})
	}
}

// runDoctor runs the doctor's checks and returns the report and whether
// it found the install healthy.
func doctorRun(ctx context.Context, t *testing.T, opts cli.DoctorOptions) (cli.Report, error) {
	t.Helper()
	report, err := cli.RunDoctor(ctx, suite.env.Config, opts)
	if err != nil && !errors.Is(err, cli.ErrUnhealthy) {
		t.Fatalf("doctor could not run: %v", err)
	}
	return report, err
}

func doctorText(r cli.Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

// wantChecks fails t unless every check whose name starts with prefix has
// status want (and at least one does).
func doctorWantChecks(t *testing.T, r cli.Report, prefix string, want cli.Status, n int) {
	t.Helper()
	got := r.Find(prefix)
	if len(got) != n {
		t.Errorf("%d checks %q, want %d:\n%s", len(got), prefix, n, doctorText(r))
		return
	}
	for _, c := range got {
		if c.Status != want {
			t.Errorf("%s: %s %s, want %s:\n%s", c.Name, c.Status, c.Message, want, doctorText(r))
		}
	}
}

// TestDoctorOnASelfManagedInstall: a healthy self-managed install passes
// every check, and a missing RoleBinding is named.
func TestDoctorOnASelfManagedInstall(t *testing.T) {
	ctx := t.Context()
	port := smFreePort(t)
	copies := installWebhookCopies(ctx, t, "doctor", map[string]int{
		"namespace.inject.autocrane.io": port, "annotated.inject.autocrane.io": port,
		"pods.validate.autocrane.io": port, "workloads.validate.autocrane.io": port,
		"jobs.validate.autocrane.io": port, "cronjobs.validate.autocrane.io": port,
	}, nil)
	doctorInstallRBAC(ctx, t, copies)
	probeNS := suite.env.CreateNamespace(ctx, t, map[string]string{spec.LabelInject: spec.InjectEnabled, copyScopeLabel: copies.id}, nil)
	// Registered before the manager starts, so it runs after it stopped.
	t.Cleanup(func() {
		err := suite.env.Client.Delete(context.WithoutCancel(ctx), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Namespace: ownNamespace, Name: manager.DefaultCertSecretName}})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete Secret: %v", err)
		}
	})
	smStart(ctx, t, ownNamespace, copies, port, certs.Policy{}, false)
	smWaitForPublishedBundle(ctx, t, ownNamespace, copies)

	opts := cli.DoctorOptions{
		MutatingWebhookConfiguration:   copies.mutating,
		ValidatingWebhookConfiguration: copies.validating,
		ProbeNamespace:                 probeNS,
	}
	// The API server and its authorizer pick up the bundle and the
	// bindings through informers: wait for a clean report.
	var report cli.Report
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		var err error
		report, err = doctorRun(ctx, t, opts)
		if err != nil {
			return false, fmt.Errorf("%w:\n%s", err, doctorText(report))
		}
		return true, nil
	})
	doctorWantChecks(t, report, "certificate mode", cli.StatusOK, 1)
	if c := report.Find("certificate mode"); len(c) == 1 && !strings.HasPrefix(c[0].Message, "self-managed") {
		t.Errorf("certificate mode: %s, want self-managed", c[0].Message)
	}
	doctorWantChecks(t, report, "self-managed Secret "+ownNamespace+"/"+manager.DefaultCertSecretName, cli.StatusOK, 1)
	doctorWantChecks(t, report, "serving certificate", cli.StatusOK, 2) // in the Secret, and at 127.0.0.1:port
	doctorWantChecks(t, report, "caBundle ", cli.StatusOK, 6)
	doctorWantChecks(t, report, "dry-run pod", cli.StatusOK, 1)
	doctorWantChecks(t, report, "rbac", cli.StatusOK, 1)
	if len(report.Find("cert-manager")) != 0 {
		t.Errorf("cert-manager checks ran in self-managed mode:\n%s", doctorText(report))
	}

	// Without the RoleBinding of config/rbac/manager, the ConfigMap
	// rights are missing, and the doctor says so.
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ownNamespace, Name: "autocrane-manager"}}
	if err := suite.env.Client.Delete(ctx, rb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, stderr, err := suite.env.Kubectl(context.WithoutCancel(ctx), nil, "apply", "-k", "../../config/rbac/manager"); err != nil {
			t.Errorf("restore RBAC: %v: %s", err, stderr)
		}
	})
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		report, err := doctorRun(ctx, t, opts)
		if !errors.Is(err, cli.ErrUnhealthy) {
			return false, fmt.Errorf("still healthy:\n%s", doctorText(report))
		}
		got := report.Find("rbac configmaps in namespace " + ownNamespace)
		if len(got) != 1 || got[0].Status != cli.StatusFail {
			return false, fmt.Errorf("the missing ConfigMap rights are not named:\n%s", doctorText(report))
		}
		want := "system:serviceaccount:autocrane-system:autocrane-manager may not get, list, watch, create, update, patch it"
		if !strings.HasPrefix(got[0].Message, want) || got[0].Hint == "" {
			t.Fatalf("message = %q, want it to start with %q, with a hint", got[0].Message, want)
		}
		if report.Failed() != 1 {
			t.Fatalf("%d checks failed, want only the ConfigMap rights:\n%s", report.Failed(), doctorText(report))
		}
		return true, nil
	})
}

// TestDoctorNamesABrokenCABundle: copies of the webhook configurations that
// serve through the suite's manager (its certificate from envtest's files,
// as cert-manager would mount them) pass; then one entry's caBundle is
// replaced by another CA, and the doctor names that entry and the failed
// dry run. It also reports cert-manager's missing API in cert-manager mode.
func TestDoctorNamesABrokenCABundle(t *testing.T) {
	ctx := t.Context()
	shared := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: "autocrane-mutating"}, shared); err != nil {
		t.Fatal(err)
	}
	envtestCA := shared.Webhooks[0].ClientConfig.CABundle
	port := suite.env.Environment.WebhookInstallOptions.LocalServingPort
	copies := installWebhookCopies(ctx, t, "doctor", map[string]int{
		"namespace.inject.autocrane.io": port, "annotated.inject.autocrane.io": port,
		"pods.validate.autocrane.io": port, "workloads.validate.autocrane.io": port,
		"jobs.validate.autocrane.io": port, "cronjobs.validate.autocrane.io": port,
	}, envtestCA)
	doctorInstallRBAC(ctx, t, copies)
	probeNS := suite.env.CreateNamespace(ctx, t, map[string]string{spec.LabelInject: spec.InjectEnabled, copyScopeLabel: copies.id}, nil)
	opts := cli.DoctorOptions{
		MutatingWebhookConfiguration:   copies.mutating,
		ValidatingWebhookConfiguration: copies.validating,
		ProbeNamespace:                 probeNS,
	}
	var report cli.Report
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		var err error
		report, err = doctorRun(ctx, t, opts)
		if err != nil {
			return false, fmt.Errorf("%w:\n%s", err, doctorText(report))
		}
		return true, nil
	})
	// Neither mode is visible: a warning, and the common checks.
	doctorWantChecks(t, report, "certificate mode", cli.StatusWarn, 1)
	doctorWantChecks(t, report, "caBundle ", cli.StatusOK, 6)
	doctorWantChecks(t, report, "dry-run pod", cli.StatusOK, 1)

	// The JSON form carries the same checks.
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var decoded cli.Report
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil || len(decoded.Checks) != len(report.Checks) {
		t.Errorf("JSON report: %v, %d checks, want %d:\n%s", err, len(decoded.Checks), len(report.Checks), buf.String())
	}

	// Break the first mutating entry: another CA.
	other, err := certs.NewCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: copies.mutating}, m); err != nil {
		t.Fatal(err)
	}
	broken := m.Webhooks[0].Name
	m.Webhooks[0].ClientConfig.CABundle = other.CertPEM
	if err := suite.env.Client.Update(ctx, m); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(ctx, t, waitTimeout, func() (bool, error) {
		report, err = doctorRun(ctx, t, opts)
		if !errors.Is(err, cli.ErrUnhealthy) {
			return false, fmt.Errorf("still healthy:\n%s", doctorText(report))
		}
		dry := report.Find("dry-run pod")
		if len(dry) != 1 || dry[0].Status != cli.StatusFail {
			return false, fmt.Errorf("the API server has not seen the broken bundle yet:\n%s", doctorText(report))
		}
		return true, nil
	})
	for _, c := range report.Find("caBundle ") {
		wantFail := c.Name == "caBundle "+copies.mutating+"/"+broken
		switch {
		case wantFail && (c.Status != cli.StatusFail || !strings.Contains(c.Message, "does not verify") || c.Hint == ""):
			t.Errorf("%s: %s %s (hint %q), want a FAIL that says it does not verify, with a hint", c.Name, c.Status, c.Message, c.Hint)
		case !wantFail && c.Status != cli.StatusOK:
			t.Errorf("%s: %s %s, want OK", c.Name, c.Status, c.Message)
		}
	}
	if dry := report.Find("dry-run pod")[0]; !strings.Contains(dry.Message, "x509") {
		t.Errorf("dry run: %s, want the API server's x509 error", dry.Message)
	}
	if report.Failed() != 2 {
		t.Errorf("%d checks failed, want the broken caBundle and the dry run:\n%s", report.Failed(), doctorText(report))
	}

	// cert-manager mode without cert-manager: its API is missing.
	opts.CertMode = cli.DoctorCertModeCertManager
	report, _ = doctorRun(ctx, t, opts)
	cm := report.Find("cert-manager Certificate " + ownNamespace + "/autocrane-webhook")
	if len(cm) != 1 || cm[0].Status != cli.StatusFail || !strings.Contains(cm[0].Message, "is not installed") {
		t.Errorf("cert-manager check = %+v, want a FAIL saying its API is not installed:\n%s", cm, doctorText(report))
	}
}
