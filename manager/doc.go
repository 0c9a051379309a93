// Package manager wires AutoCrane's webhooks (and, in later releases, its
// controllers) into one controller-runtime manager. cmd/autocrane, the
// envtest suite and the demo all build the manager through New, so what the
// tests run is what ships.
package manager
