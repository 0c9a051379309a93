// Command pause is the sandbox ("pause") container of the test cluster's
// pods: it holds the pod's namespaces, reaps the zombies it inherits when
// the pod shares one PID namespace, and exits 0 on SIGTERM or SIGINT.
//
// It exists because the cluster cannot pull registry.k8s.io/pause: these
// machines reach no registry. hack/imagebuild builds it into
// autocrane.local/pause:dev, containerd's sandbox_image in hack/cluster.
package main
