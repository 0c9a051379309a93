package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/autocrane/autocrane/cli"
	"github.com/autocrane/autocrane/internal/envflag"
)

const doctorUsage = `Usage: autocrane doctor [flags]

Checks a live AutoCrane install and says what is wrong, one line per check:
OK, WARN or FAIL, what was found and, for WARN and FAIL, a hint.

  - both webhook configurations exist, and each entry's caBundle verifies
    the serving certificate (read from its Secret, and fetched by a TLS
    handshake with the webhook when reachable from here);
  - cert-manager mode: the Certificate is Ready and not within 30 days of
    expiry; self-managed mode: the manager's Secret is sound;
  - the webhooks answer: a pod created with dryRun: All in --probe-namespace
    comes back injected (nothing is stored);
  - the manager's service account holds every permission it needs
    (SubjectAccessReviews).

Exit status: 0 when no check failed, 1 when one did, 2 for a usage error.
It uses the cluster named by --kubeconfig, $KUBECONFIG, ~/.kube/config or
the in-cluster service account, in that order; it needs rights to read the
webhook configurations, the Secret and the Certificate, to create pods
(dry run) and SubjectAccessReviews: a cluster admin has them.

Every flag can also be set through the environment variable shown after it;
the flag wins. Flags:
`

// doctorFlags are the doctor's flags.
type doctorFlags struct {
	kubeconfig string
	output     string
	opts       cli.DoctorOptions
}

func newDoctorFlags(stderr io.Writer) (*flag.FlagSet, *doctorFlags, *envflag.Set) {
	fs, e := newFlagSet("doctor", doctorUsage, stderr)
	d := &doctorFlags{}
	o := &d.opts
	e.String(&d.kubeconfig, "kubeconfig", "", "path to a kubeconfig; empty: $KUBECONFIG, ~/.kube/config, then in-cluster")
	fs.StringVar(&d.output, "o", "text", "output format: text (one line per check) or json")
	e.String(&o.Namespace, "namespace", "autocrane-system", "AutoCrane's namespace: the manager's service account, Secret and Certificate")
	e.String(&o.ServiceAccount, "service-account", "autocrane-manager", "the manager's service account in --namespace, whose permissions are checked")
	e.String(&o.CertMode, "cert-mode", cli.DoctorCertModeAuto, "the manager's certificate mode: cert-manager, self-managed, or auto (cert-manager when a webhook configuration carries cert-manager.io/inject-ca-from, self-managed when the Secret holds ca.key)")
	e.String(&o.CertSecretName, "cert-secret-name", "autocrane-webhook-tls", "the serving certificate's Secret in --namespace (in cert-manager mode the Certificate's spec.secretName wins)")
	e.String(&o.Certificate, "certificate", "autocrane-webhook", "cert-manager mode: the Certificate in --namespace, when no webhook configuration names one in cert-manager.io/inject-ca-from")
	e.String(&o.MutatingWebhookConfiguration, "mutating-webhook-configuration", "autocrane-mutating", "the MutatingWebhookConfiguration to check")
	e.String(&o.ValidatingWebhookConfiguration, "validating-webhook-configuration", "autocrane-validating", "the ValidatingWebhookConfiguration to check")
	e.String(&o.ProbeNamespace, "probe-namespace", "default", "namespace of the dry-run probe pod; it must be in the webhooks' scope (not kube-system, not AutoCrane's own)")
	e.Duration(&o.Timeout, "timeout", 5*time.Second, "bound on each TLS handshake with the webhook")
	return fs, d, e
}

// runDoctor parses the flags, runs the checks and prints the report. Its
// error wraps cli.ErrUnhealthy when a check failed (exit 1).
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, d, e := newDoctorFlags(stderr)
	if err := parseArgs(fs, e, args); err != nil {
		return err
	}
	if d.output != "text" && d.output != "json" {
		return fmt.Errorf("-o %q: must be text or json: %w", d.output, errUsage)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = d.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	report, runErr := cli.RunDoctor(ctx, cfg, d.opts)
	if len(report.Checks) > 0 {
		write := report.WriteText
		if d.output == "json" {
			write = report.WriteJSON
		}
		if err := write(stdout); err != nil {
			return errors.Join(runErr, fmt.Errorf("write report: %w", err))
		}
	}
	return runErr
}
