// Package e2e tests AutoCrane installed as it ships (config/e2e, and
// config/e2e-selfmanaged in TestSelfManagedRotation) on a real
// single-node Kubernetes cluster: real kubelet, containerd, pod network,
// kube-proxy and CoreDNS (hack/cluster). Its tests carry the build tag e2e,
// so `go test ./...` and `make test` skip them; run them with `make e2e`.
//
// TestMain builds the images (hack/imagebuild), starts the cluster with
// hack/cluster-up unless $E2E_KUBECONFIG names one, installs AutoCrane,
// runs the tests, and always runs hack/cluster-down on a cluster it
// started, also on Ctrl-C. docs/cluster.md lists the environment variables.
//
// cert-manager's controllers cannot be built from what the test machines
// reach, so the suite installs cert-manager's real CRDs and then does what
// cert-manager would: it issues the Secrets the Certificates ask for and
// fills the caBundle that cert-manager.io/inject-ca-from names
// (certmanager_test.go).
package e2e
