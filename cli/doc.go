// Package cli holds the subcommands of the autocrane binary that work on
// manifests, offline, rather than on a cluster.
//
// inject (Inject) runs the mutating webhook's own injection, injector.Mutate
// followed by injector.Patch, over every pod template of a YAML or JSON
// stream and prints the result, so that a user can review what the webhook
// will add, or apply injected manifests where the webhook does not run.
// InjectPodJSON is the same path for one raw pod, for tests that compare the
// command with the webhook.
//
// cli may import spec and injector. It must not import controller-runtime or
// client-go: it never talks to a cluster.
package cli
