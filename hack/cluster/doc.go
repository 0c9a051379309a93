// Command cluster starts and stops a real single-node Kubernetes cluster on
// this machine for AutoCrane's end-to-end tests: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, a private containerd, the kubelet,
// kube-proxy and CoreDNS, with a bridge pod network that never forwards a
// packet off the machine. hack/cluster-up and hack/cluster-down run it;
// docs/cluster.md explains what it changes on the host and how it undoes it.
//
// Everything it creates is written to a journal (cluster.json in the work
// directory) before it is created, so "down" removes exactly that, also after
// a start that failed or was interrupted half-way.
package main
