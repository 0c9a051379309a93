package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrUnhealthy is RunDoctor's error when at least one check failed; the
// command exits 1.
var ErrUnhealthy = errors.New("unhealthy")

// Certificate modes the doctor knows (the manager's --cert-mode), and auto.
const (
	DoctorCertModeAuto        = "auto"
	DoctorCertModeCertManager = "cert-manager"
	DoctorCertModeSelfManaged = "self-managed"
)

// DoctorOptions say where AutoCrane is installed. Every zero field takes
// the default of a standard install (config/default or config/selfmanaged).
type DoctorOptions struct {
	// Namespace is AutoCrane's namespace. Empty: autocrane-system.
	Namespace string
	// ServiceAccount is the manager's, in Namespace. Empty: autocrane-manager.
	ServiceAccount string
	// CertMode is auto, cert-manager or self-managed. Empty: auto (the
	// cert-manager.io/inject-ca-from annotation means cert-manager, a
	// Secret holding ca.key means self-managed).
	CertMode string
	// CertSecretName is the serving certificate's Secret in Namespace.
	// Empty: autocrane-webhook-tls.
	CertSecretName string
	// Certificate is cert-manager's Certificate in Namespace, when the
	// webhook configurations do not name one in inject-ca-from. Empty:
	// autocrane-webhook.
	Certificate string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration are
	// the configurations to check. Empty: autocrane-mutating and
	// autocrane-validating.
	MutatingWebhookConfiguration   string
	ValidatingWebhookConfiguration string
	// ProbeNamespace is where the dry-run pod is created (nothing is
	// stored). Empty: default.
	ProbeNamespace string
	// Timeout bounds each TLS handshake with the webhook. Zero: 5s.
	Timeout time.Duration
	// Clock says what "now" is for expiry checks. Nil: the real clock.
	Clock clock.PassiveClock
}

func (o DoctorOptions) withDefaults() DoctorOptions {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&o.Namespace, "autocrane-system")
	def(&o.ServiceAccount, "autocrane-manager")
	def(&o.CertMode, DoctorCertModeAuto)
	def(&o.CertSecretName, "autocrane-webhook-tls")
	def(&o.Certificate, "autocrane-webhook")
	def(&o.MutatingWebhookConfiguration, "autocrane-mutating")
	def(&o.ValidatingWebhookConfiguration, "autocrane-validating")
	def(&o.ProbeNamespace, "default")
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// Status is a check's verdict.
type Status string

// The verdicts. Only FAIL makes the install unhealthy.
const (
	StatusOK   Status = "OK"
	StatusWarn Status = "WARN"
	StatusFail Status = "FAIL"
)

// Check is one line of the doctor's report.
type Check struct {
	// Name says what was checked, e.g. "caBundle autocrane-mutating/namespace.inject.autocrane.io".
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Hint says what to do about a WARN or FAIL.
	Hint string `json:"hint,omitempty"`
}

// Report is every check, in the order they ran.
type Report struct {
	Checks []Check `json:"checks"`
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }

func (r *Report) ok(name, msg string) { r.add(Check{Name: name, Status: StatusOK, Message: msg}) }

func (r *Report) warn(name, msg, hint string) {
	r.add(Check{Name: name, Status: StatusWarn, Message: msg, Hint: hint})
}

func (r *Report) fail(name, msg, hint string) {
	r.add(Check{Name: name, Status: StatusFail, Message: msg, Hint: hint})
}

// Failed counts the FAIL checks.
func (r Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			n++
		}
	}
	return n
}

// Find returns the checks whose name starts with prefix.
func (r Report) Find(prefix string) []Check {
	var out []Check
	for _, c := range r.Checks {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// WriteText prints one line per check: the verdict, the check, what was
// found and, for WARN and FAIL, a hint.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %s: %s", c.Status, c.Name, c.Message)
		if c.Hint != "" {
			fmt.Fprintf(&b, " (hint: %s)", c.Hint)
		}
		b.WriteByte('\n')
	}
	if n := r.Failed(); n > 0 {
		fmt.Fprintf(&b, "%d of %d checks failed\n", n, len(r.Checks))
	} else {
		fmt.Fprintf(&b, "all %d checks passed\n", len(r.Checks))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// doctor holds what the checks share.
type doctor struct {
	opts   DoctorOptions
	client client.Client
	report Report
	// configs are the webhook configurations found (nil when absent).
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
}

// RunDoctor checks a live install through cfg and returns the report. Its
// error is ErrUnhealthy when a check failed, or why the checks could not
// run at all (a bad config).
func RunDoctor(ctx context.Context, cfg *rest.Config, opts DoctorOptions) (Report, error) {
	opts = opts.withDefaults()
	switch opts.CertMode {
	case DoctorCertModeAuto, DoctorCertModeCertManager, DoctorCertModeSelfManaged:
	default:
		return Report{}, &UsageError{Err: fmt.Errorf("--cert-mode %q: must be auto, cert-manager or self-managed", opts.CertMode)}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return Report{}, fmt.Errorf("build scheme: %w", err)
	}
	if err := cmv1.AddToScheme(scheme); err != nil {
		return Report{}, fmt.Errorf("build scheme: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return Report{}, fmt.Errorf("connect to the cluster: %w", err)
	}
	// One clear error, rather than every check failing the same way.
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return Report{}, fmt.Errorf("connect to the cluster: %w", err)
	}
	version, err := dc.ServerVersion()
	if err != nil {
		return Report{}, fmt.Errorf("cannot reach the API server at %s: %w", cfg.Host, err)
	}
	d := &doctor{opts: opts, client: c}
	d.report.ok("API server", cfg.Host+" answers, Kubernetes "+version.GitVersion)
	d.checkWebhookConfigurations(ctx)
	mode := d.certMode(ctx)
	if mode == DoctorCertModeCertManager {
		d.checkCertManager(ctx)
	}
	if mode == DoctorCertModeSelfManaged {
		d.checkSelfManagedSecret(ctx)
	}
	d.checkCABundles(ctx, mode)
	d.checkDryRun(ctx)
	d.checkRBAC(ctx, mode)
	if d.report.Failed() > 0 {
		return d.report, fmt.Errorf("%w: %d of %d checks failed", ErrUnhealthy, d.report.Failed(), len(d.report.Checks))
	}
	return d.report, nil
}
