package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names of the webhook configurations shipped in config/webhook/.
const (
	DefaultMutatingWebhookConfiguration   = "autocrane-mutating"
	DefaultValidatingWebhookConfiguration = "autocrane-validating"
)

// WebhookConfigurations names the configurations whose caBundle fields the
// Rotator keeps equal to the Secret's TrustBundle.
type WebhookConfigurations struct {
	// Mutating names a MutatingWebhookConfiguration. Empty: none.
	Mutating string
	// Validating names a ValidatingWebhookConfiguration. Empty: none.
	Validating string
}

// webhookEntry is what the patch needs of one webhooks[] item.
type webhookEntry struct {
	name     string
	caBundle []byte
}

// jsonPatchOp is one RFC 6902 operation.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// caBundlePatch returns a JSON patch that sets caBundle on every entry
// whose value differs from bundle, and nothing else; nil when none
// differs. Each change is guarded by a test of the entry's name, so a
// configuration reordered meanwhile fails the patch instead of receiving
// a bundle at the wrong place.
func caBundlePatch(entries []webhookEntry, bundle []byte) ([]byte, error) {
	var ops []jsonPatchOp
	for i, e := range entries {
		if bytes.Equal(e.caBundle, bundle) {
			continue
		}
		base := "/webhooks/" + strconv.Itoa(i)
		ops = append(ops,
			jsonPatchOp{Op: "test", Path: base + "/name", Value: e.name},
			// "add" sets a member whether or not it exists; []byte
			// marshals to base64, as caBundle is stored.
			jsonPatchOp{Op: "add", Path: base + "/clientConfig/caBundle", Value: bundle})
	}
	if len(ops) == 0 {
		return nil, nil
	}
	p, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode caBundle patch: %w", err)
	}
	return p, nil
}

// publishBundle makes every entry of the named webhook configurations
// trust bundle, patching only the entries that differ. A configuration
// that does not exist is skipped: nothing calls the webhook through it.
// reader is where the configurations are read (the cache); the patches go
// to the API server through writer.
func publishBundle(ctx context.Context, reader client.Reader, writer client.Writer, names WebhookConfigurations, bundle []byte) (patched []string, err error) {
	targets := []struct {
		name string
		obj  client.Object
	}{
		{names.Mutating, &admissionregistrationv1.MutatingWebhookConfiguration{}},
		{names.Validating, &admissionregistrationv1.ValidatingWebhookConfiguration{}},
	}
	for _, t := range targets {
		if t.name == "" {
			continue
		}
		if err := reader.Get(ctx, client.ObjectKey{Name: t.name}, t.obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return patched, fmt.Errorf("read webhook configuration %s: %w", t.name, err)
		}
		p, err := caBundlePatch(webhookEntries(t.obj), bundle)
		if err != nil {
			return patched, err
		}
		if p == nil {
			continue
		}
		if err := writer.Patch(ctx, t.obj, client.RawPatch(types.JSONPatchType, p)); err != nil {
			return patched, fmt.Errorf("patch caBundle of webhook configuration %s: %w", t.name, err)
		}
		patched = append(patched, t.name)
	}
	return patched, nil
}

func webhookEntries(obj client.Object) []webhookEntry {
	var entries []webhookEntry
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for _, w := range o.Webhooks {
			entries = append(entries, webhookEntry{w.Name, w.ClientConfig.CABundle})
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for _, w := range o.Webhooks {
			entries = append(entries, webhookEntry{w.Name, w.ClientConfig.CABundle})
		}
	}
	return entries
}
