// Package podinfo reads a pod's own annotations from the file that the
// kubelet's downward API volume keeps up to date, so that AutoCrane's
// sidecars need no Kubernetes API credentials.
package podinfo
