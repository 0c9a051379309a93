package envtest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/cli"
	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// TestInjectCLIMatchesTheWebhook compares what `autocrane inject` writes
// with what the webhook does to the same pod, both as the API server stores
// them (server-side dry run, so defaults are applied alike):
//
//	A: the original pod, created: the webhook injects it.
//	B: `autocrane inject` output, created: the webhook must leave it alone
//	   (checked with its unchanged counter), so B is the CLI's work alone.
func TestInjectCLIMatchesTheWebhook(t *testing.T) {
	ctx := t.Context()
	ns := injectedNamespace(ctx, t)
	var nsObj corev1.Namespace
	if err := suite.env.Client.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		t.Fatal(err)
	}
	ann := dataAnnotations()
	ann[spec.KeyMinReadySeconds] = "20"
	original := appPod("parity", ann, map[string]string{"app": "parity"})
	original.Namespace = ns
	original.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	raw, err := json.Marshal(original)
	if err != nil {
		t.Fatal(err)
	}

	out, outcome, err := cli.InjectPodJSON(raw, spec.Namespace{Name: ns, Labels: nsObj.Labels, Annotations: nsObj.Annotations}, suite.config)
	if err != nil || outcome != injector.Injected {
		t.Fatalf("autocrane inject: outcome %s, err %v", outcome, err)
	}
	var fromCLI corev1.Pod
	if err := json.Unmarshal(out, &fromCLI); err != nil {
		t.Fatal(err)
	}

	webhookResult := original.DeepCopy()
	if err := suite.env.Client.Create(ctx, webhookResult, client.DryRunAll); err != nil {
		t.Fatalf("dry-run create original: %v", err)
	}
	unchangedBefore := admissions(t, "skipped", "unchanged")
	cliResult := fromCLI.DeepCopy()
	if err := suite.env.Client.Create(ctx, cliResult, client.DryRunAll); err != nil {
		t.Fatalf("dry-run create CLI output: %v", err)
	}
	if got := admissions(t, "skipped", "unchanged"); got != unchangedBefore+1 {
		t.Fatalf("the webhook changed the CLI's output (unchanged count %v, want %v)", got, unchangedBefore+1)
	}

	if diff := cmp.Diff(webhookResult.Spec, cliResult.Spec); diff != "" {
		t.Errorf("spec: webhook (-) vs autocrane inject (+):\n%s", diff)
	}
	if diff := cmp.Diff(webhookResult.Annotations, cliResult.Annotations); diff != "" {
		t.Errorf("annotations: webhook (-) vs autocrane inject (+):\n%s", diff)
	}
}
