// Package cli holds the subcommands of the autocrane binary, other than the
// manager.
//
// inject (Inject) runs the mutating webhook's own injection, injector.Mutate
// followed by injector.Patch, over every pod template of a YAML or JSON
// stream and prints the result, so that a user can review what the webhook
// will add, or apply injected manifests where the webhook does not run. It
// works offline. InjectPodJSON is the same path for one raw pod, for tests
// that compare the command with the webhook.
//
// watchdog (Watchdog) shows a pod's watchdogs and posts a watchdog's level,
// and doctor (RunDoctor) checks a live install; both use the kubeconfig,
// like kubectl.
package cli
