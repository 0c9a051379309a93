// Package envtest holds AutoCrane's integration tests. They run against a
// real kube-apiserver, etcd and kube-controller-manager (built by
// hack/envtest-assets.sh) with the webhook configurations from config/
// installed as they ship, and the manager built by manager.New serving them.
package envtest
