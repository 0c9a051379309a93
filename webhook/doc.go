// Package webhook holds AutoCrane's admission handlers, and only them: thin
// adapters between controller-runtime's admission API and the spec and
// injector packages.
//
//   - PodMutator, served at MutatePodPath, injects AutoCrane's sidecars into
//     pods on CREATE.
//   - Validator, served at ValidatePath, checks the AutoCrane keys of pods
//     and pod templates.
//
// A handler owns what is about HTTP admission: which requests it answers,
// decoding the object, reading its namespace from the manager's cache,
// turning the decision into an answer with a code and a reason (a patch, a
// 422 naming every bad key, a 400 or a 500), its log line and its metrics.
// Which pods are in scope, what their keys mean and what is injected are
// decided by spec and injector; this package must not grow such logic.
//
// The manager wires the pod mutator as:
//
//	m, err := webhook.NewPodMutator(webhook.PodMutatorOptions{
//		Namespaces:         mgr.GetCache(),
//		Config:             cfg,
//		ExcludedNamespaces: append(spec.SystemNamespaces(), ownNamespace),
//		Registerer:         metrics.Registry,
//	})
//	mgr.GetWebhookServer().Register(webhook.MutatePodPath, &admission.Webhook{Handler: m})
//
// admission.Webhook recovers panics by default (RecoverPanic) and the
// webhook server caps request bodies at 7 MiB; PodMutator recovers its own
// panics as well and counts them.
//
// The pod mutator's metrics are autocrane_webhook_admissions_total{webhook,
// result,reason} and autocrane_webhook_admission_duration_seconds{webhook};
// every label takes its values from a fixed set, listed in the help text.
package webhook
