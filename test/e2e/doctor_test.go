//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/autocrane/autocrane/cli"
)

// brokenEntry is the webhook entry whose caBundle TestDoctor breaks: the
// mutating entry that serves labelled namespaces, so the fault also shows
// in admissions.
const brokenEntry = "namespace.inject.autocrane.io"

// TestDoctor runs `autocrane doctor` against the live install: exit 0 with
// every check OK; with one webhook entry's caBundle replaced by another CA,
// exit 1 naming that entry (in self-managed mode the leader puts the bundle
// back by itself instead); with the bundle put back, admissions work and
// the doctor is satisfied again.
func TestDoctor(t *testing.T) {
	ctx := t.Context()
	bin := buildAutoCrane(t)
	probe := newNamespace(t, "e2e-doctor", true)
	requireDoctorHealthy(t, bin, probe)

	original, err := caBundleOf(ctx, brokenEntry)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newCertificate(map[string]any{"commonName": "not-autocrane-ca", "isCA": true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	selfManaged, err := installIsSelfManaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := setMutatingCABundle(ctx, brokenEntry, other.certPEM); err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			_ = setMutatingCABundle(context.WithoutCancel(ctx), brokenEntry, original)
		}
	})
	if selfManaged {
		requireBundleRepaired(t, other.certPEM)
	} else {
		requireDoctorNamesBrokenBundle(t, bin, probe)
		if err := setMutatingCABundle(ctx, brokenEntry, original); err != nil {
			t.Fatal(err)
		}
	}
	restored = true
	if err := env.waitForInjection(ctx); err != nil {
		t.Fatal(err)
	}
	if a := createSteadyPod(ctx, probe, "restored"); a.failed() {
		t.Fatalf("creation after restoring the caBundle: injected %v, %v", a.injected, a.err)
	}
	requireDoctorHealthy(t, bin, probe)
}

// requireDoctorNamesBrokenBundle waits until the API server's calls to the
// webhook fail on the certificate, then checks that the doctor exits 1 and
// names the broken entry, and the failed dry run as its only consequence.
func requireDoctorNamesBrokenBundle(t *testing.T, bin, probe string) {
	t.Helper()
	// The API server picks the change up from its watch.
	err := poll(t.Context(), time.Minute, 500*time.Millisecond, func(ctx context.Context) error {
		a := createSteadyPod(ctx, probe, uniqueName("broken"))
		if a.err == nil {
			return errors.New("the API server still trusts the webhook")
		}
		if !strings.Contains(a.err.Error(), "x509") {
			return fmt.Errorf("%w: want a certificate error, got: %v", errStop, a.err)
		}
		t.Logf("with the wrong caBundle, admissions fail: %v", a.err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	report, code, out := runDoctor(t, bin, probe)
	if code != 1 {
		t.Fatalf("doctor exited %d with a wrong caBundle, want 1:\n%s", code, out)
	}
	broken := fmt.Sprintf("caBundle %s/%s", mutatingConfig, brokenEntry)
	dryRun := "dry-run pod in namespace " + probe
	named := false
	for _, c := range report.Checks {
		switch {
		case c.Name == broken:
			named = c.Status == cli.StatusFail
			t.Logf("the doctor on the fault: %s %s: %s (hint: %s)", c.Status, c.Name, c.Message, c.Hint)
		case c.Name == dryRun && c.Status == cli.StatusFail && strings.Contains(c.Message, "x509"):
			// What users see: the API server cannot call the webhook.
		case c.Status == cli.StatusFail:
			t.Errorf("unexpected failure: %s: %s", c.Name, c.Message)
		}
	}
	if !named {
		t.Errorf("the doctor does not fail %q:\n%s", broken, out)
	}
}

// requireBundleRepaired waits until the self-managed leader has replaced
// the foreign caBundle (docs/tls.md: a reset bundle is repaired within a
// second).
func requireBundleRepaired(t *testing.T, foreign []byte) {
	t.Helper()
	start := time.Now()
	err := poll(t.Context(), time.Minute, 200*time.Millisecond, func(ctx context.Context) error {
		got, err := caBundleOf(ctx, brokenEntry)
		if err == nil && bytes.Equal(got, foreign) {
			err = errors.New("still the foreign CA")
		}
		return err
	})
	if err != nil {
		t.Fatalf("the leader did not repair the caBundle of %s/%s: %v", mutatingConfig, brokenEntry, err)
	}
	t.Logf("the leader repaired the caBundle of %s/%s within %s", mutatingConfig, brokenEntry, time.Since(start).Round(100*time.Millisecond))
}

// installIsSelfManaged tells the installed certificate mode the way the
// doctor does: cert-manager when a configuration names a Certificate.
func installIsSelfManaged(ctx context.Context) (bool, error) {
	m, err := env.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mutatingConfig, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	_, certManager := m.Annotations["cert-manager.io/inject-ca-from"]
	return !certManager, nil
}

// requireDoctorHealthy runs the doctor and requires exit 0 and every check
// OK.
func requireDoctorHealthy(t *testing.T, bin, probe string) {
	t.Helper()
	report, code, out := runDoctor(t, bin, probe)
	if code != 0 {
		t.Fatalf("doctor exited %d, want 0:\n%s", code, out)
	}
	requireAllOK(t, report, out)
}

// buildAutoCrane builds cmd/autocrane for this machine into a temporary
// directory, once per test.
func buildAutoCrane(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "autocrane")
	if out, err := env.output(t.Context(), "go", "build", "-o", bin, "./cmd/autocrane"); err != nil {
		t.Fatalf("building autocrane: %v\n%s", err, out)
	}
	return bin
}

// runDoctor runs `autocrane doctor -o json` against the suite's cluster
// with probe as the dry-run namespace, and returns its report, exit code,
// and its whole output for messages.
func runDoctor(t *testing.T, bin, probe string, args ...string) (cli.Report, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"doctor", "--kubeconfig", env.kubeconfig,
		"--probe-namespace", probe, "-o", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running the doctor: %v", err)
	}
	var report cli.Report
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("the doctor's JSON: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var text strings.Builder
	for _, c := range report.Checks {
		fmt.Fprintf(&text, "%-5s %s: %s\n", c.Status, c.Name, c.Message)
	}
	text.WriteString(stderr.String())
	t.Logf("autocrane doctor (exit %d):\n%s", code, text.String())
	return report, code, text.String()
}

// requireAllOK fails unless every check is OK. One warning is expected and
// allowed: the doctor runs on the host, where the Service's DNS name does
// not resolve, so it cannot fetch the served certificate itself (the
// dry-run check proves the API server can).
func requireAllOK(t *testing.T, report cli.Report, out string) {
	t.Helper()
	if len(report.Checks) == 0 {
		t.Fatalf("the doctor ran no check:\n%s", out)
	}
	for _, c := range report.Checks {
		if c.Status == cli.StatusOK {
			continue
		}
		if c.Status == cli.StatusWarn && strings.HasPrefix(c.Name, "serving certificate at ") && strings.Contains(c.Message, "unreachable from here") {
			continue
		}
		t.Errorf("%s %s: %s (hint: %s)", c.Status, c.Name, c.Message, c.Hint)
	}
}

// caBundleOf returns the caBundle of the mutating configuration's entry.
func caBundleOf(ctx context.Context, entry string) ([]byte, error) {
	m, err := env.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mutatingConfig, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	for _, w := range m.Webhooks {
		if w.Name == entry {
			return w.ClientConfig.CABundle, nil
		}
	}
	return nil, fmt.Errorf("%s has no webhook %s", mutatingConfig, entry)
}

// setMutatingCABundle replaces one entry's caBundle, with a JSON patch that
// first tests the entry's name, so it never writes another entry.
func setMutatingCABundle(ctx context.Context, entry string, bundle []byte) error {
	m, err := env.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, mutatingConfig, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for i, w := range m.Webhooks {
		if w.Name != entry {
			continue
		}
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": fmt.Sprintf("/webhooks/%d/name", i), "value": entry},
			{"op": "replace", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), "value": base64.StdEncoding.EncodeToString(bundle)},
		})
		_, err := env.cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Patch(ctx, mutatingConfig, types.JSONPatchType, patch, metav1.PatchOptions{})
		if err != nil {
			return fmt.Errorf("setting the caBundle of %s/%s: %w", mutatingConfig, entry, err)
		}
		return nil
	}
	return fmt.Errorf("%s has no webhook %s", mutatingConfig, entry)
}
