//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// rotationConfig is config/e2e-selfmanaged with certificate lifetimes of
// seconds (its kustomization says which).
const rotationConfig = "test/e2e/testdata/selfmanaged-rotation"

// servingRenewalsWanted is how many serving certificates, the first
// included, the test wants to see served under load.
const servingRenewalsWanted = 3

// TestSelfManagedRotation reinstalls AutoCrane in self-managed mode
// (config/e2e-selfmanaged, with lifetimes of seconds) the way docs/install.md
// says, creates pods steadily while the leader renews the serving
// certificate and rotates its CA (every phase: ca-next published, promoted,
// the old CA dropped), and requires every creation to be admitted and
// injected. Then the doctor finds the install healthy, a foreign caBundle
// is repaired by the leader, and AutoCrane's webhook configurations are
// unchanged but for their caBundle. At the end the suite's own install
// ($E2E_CONFIG) is put back.
func TestSelfManagedRotation(t *testing.T) {
	ctx := t.Context()
	bin := buildAutoCrane(t)
	start := time.Now()
	if err := env.uninstallAutoCrane(ctx, env.config); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restoreSuiteInstall(t) })
	selfManaged := *env
	selfManaged.config = rotationConfig
	if err := selfManaged.installAutoCrane(ctx); err != nil {
		t.Fatalf("installing %s: %v", rotationConfig, err)
	}
	t.Logf("reinstalled in self-managed mode (%s) in %s", rotationConfig, time.Since(start).Round(100*time.Millisecond))
	if sm, err := installIsSelfManaged(ctx); err != nil || !sm {
		t.Fatalf("the webhook configurations still name a cert-manager Certificate (%v)", err)
	}
	checkSpecs := snapshotWebhookSpecs(t)
	ns := newNamespace(t, "e2e-rotation", true)

	watch := watchWebhookSecret(t)
	load := startSteadyCreates(t, ns, "rot", 500*time.Millisecond)
	err := poll(ctx, 3*time.Minute, time.Second, func(context.Context) error {
		return watch.rotated(servingRenewalsWanted)
	})
	if err != nil {
		t.Errorf("no complete rotation seen: %v", err)
	}
	// A little more load on the certificates of the new CA alone.
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	results := load.stop()
	states := watch.stop()
	t.Logf("the Secret went through %d states:\n%s", len(states), strings.Join(states, "\n"))
	requireNoFailedAdmission(t, "through certificate renewals and a CA rotation", results)

	requireDoctorHealthy(t, bin, ns)
	foreign, err := newCertificate(map[string]any{"commonName": "not-autocrane-ca", "isCA": true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := setMutatingCABundle(ctx, brokenEntry, foreign.certPEM); err != nil {
		t.Fatal(err)
	}
	requireBundleRepaired(t, foreign.certPEM)
	if err := env.waitForInjection(ctx); err != nil {
		t.Fatal(err)
	}
	checkSpecs()
}

// uninstallAutoCrane removes an install in the order docs/install.md gives:
// the webhook configurations first, then everything else, waiting until
// AutoCrane's namespace is gone.
func (s *suite) uninstallAutoCrane(ctx context.Context, config string) error {
	s.logf("uninstalling %s", config)
	for _, args := range [][]string{
		{"delete", "mutatingwebhookconfiguration", mutatingConfig, "--ignore-not-found"},
		{"delete", "validatingwebhookconfiguration", validatingConfig, "--ignore-not-found"},
		{"delete", "-k", config, "--ignore-not-found", "--wait", "--timeout=3m"},
	} {
		if out, err := s.kubectl(ctx, "", args...); err != nil {
			return fmt.Errorf("uninstalling %s: %w\n%s", config, err, out)
		}
	}
	return nil
}

// restoreSuiteInstall puts the suite's own install back after the
// self-managed one, so later tests find what TestMain installed.
func restoreSuiteInstall(t *testing.T) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	start := time.Now()
	if err := env.uninstallAutoCrane(ctx, rotationConfig); err != nil {
		t.Error(err)
		return
	}
	if err := env.installAutoCrane(ctx); err != nil {
		t.Errorf("reinstalling %s: %v", env.config, err)
		return
	}
	t.Logf("%s reinstalled in %s", env.config, time.Since(start).Round(100*time.Millisecond))
}

// secretState is what of the self-managed Secret a rotation changes, each
// certificate as a short fingerprint ("" when absent).
type secretState struct {
	ca, serving, next, previous string
}

func (s secretState) String() string {
	return fmt.Sprintf("ca=%s tls=%s next=%s previous=%s", orDash(s.ca), orDash(s.serving), orDash(s.next), orDash(s.previous))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fingerprint(pem []byte) string {
	if len(pem) == 0 {
		return ""
	}
	sum := sha256.Sum256(pem)
	return hex.EncodeToString(sum[:4])
}

// secretWatch polls the self-managed Secret and keeps every distinct state
// it goes through, in order.
type secretWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	states []secretState
	at     []time.Time
}

func watchWebhookSecret(t *testing.T) *secretWatch {
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	w := &secretWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			sec, err := env.cs.CoreV1().Secrets(autocraneNamespace).Get(ctx, "autocrane-webhook-tls", metav1.GetOptions{})
			if err == nil {
				w.observe(stateOf(sec))
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func stateOf(sec *corev1.Secret) secretState {
	return secretState{
		ca:       fingerprint(sec.Data["ca.crt"]),
		serving:  fingerprint(sec.Data["tls.crt"]),
		next:     fingerprint(sec.Data["ca-next.crt"]),
		previous: fingerprint(sec.Data["ca-previous.crt"]),
	}
}

func (w *secretWatch) observe(s secretState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.states); n > 0 && w.states[n-1] == s {
		return
	}
	w.states = append(w.states, s)
	w.at = append(w.at, time.Now())
}

// rotated returns nil once the Secret was seen through a whole CA
// rotation, each phase in order (A with B next; B signing with A previous;
// B alone), and through at least servings serving certificates.
func (w *secretWatch) rotated(servings int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for _, s := range w.states {
		seen[s.serving] = true
	}
	if len(seen) < servings {
		return fmt.Errorf("%d serving certificates seen, want %d", len(seen), servings)
	}
	for i, s := range w.states {
		if s.next == "" {
			continue
		}
		promoted := -1
		for j := i + 1; j < len(w.states); j++ {
			if promoted < 0 && w.states[j].ca == s.next && w.states[j].previous == s.ca {
				promoted = j
			}
			if promoted >= 0 && w.states[j].ca == s.next && w.states[j].previous == "" {
				return nil
			}
		}
	}
	return errors.New("no CA rotation seen through all its phases yet")
}

// stop ends the watch and returns the states seen, one line each.
func (w *secretWatch) stop() []string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := make([]string, len(w.states))
	for i, s := range w.states {
		lines[i] = fmt.Sprintf("  %s %s", w.at[i].Format("15:04:05.000"), s)
	}
	return lines
}
