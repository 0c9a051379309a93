// Package framework runs the Kubernetes control plane that AutoCrane's
// integration tests talk to.
//
// It owns three things:
//
//   - a real kube-apiserver backed by a real etcd, started through
//     controller-runtime's envtest, with AutoCrane's webhook configurations
//     installed and rewritten to call a webhook server served by the test
//     process on 127.0.0.1;
//   - optionally, a real kube-controller-manager process, so that the
//     workload controllers (Deployment, ReplicaSet, PodDisruptionBudget,
//     garbage collector, namespace deletion, service accounts, ...) behave as
//     in a cluster. There is no scheduler and no kubelet: Pods are created but
//     stay Pending;
//   - a kubectl runner bound to an admin kubeconfig.
//
// The binaries (etcd, kube-apiserver, kube-controller-manager, kubectl) are
// taken from the directory named by KUBEBUILDER_ASSETS, which `make test` sets
// from hack/envtest-assets.sh. Nothing is downloaded, and everything listens on
// free loopback ports only.
//
// A test package typically starts one Env in TestMain and stops it after
// m.Run. Start does not install a controller-runtime logger; call
// log.SetLogger in TestMain if you want envtest's own log lines.
//
// This package exists for tests and the developer demo (hack/demo) only;
// nothing AutoCrane ships may import it: it imports package testing and
// starts processes.
package framework
