package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
)

const corednsImage = "autocrane.local/coredns:dev"

// corednsBinary builds CoreDNS from its Go module in a throwaway module, the
// way hack/envtest-assets.sh builds Kubernetes, and caches it under
// CACHE/assets/coredns-VERSION-linux-ARCH/, locked against parallel callers.
// A cold build takes a few minutes on 2 cores.
func corednsBinary(ctx context.Context, log logr.Logger, c config) (string, error) {
	dir := filepath.Join(c.CacheDir, "assets", fmt.Sprintf("coredns-%s-linux-%s", c.CoreDNSVersion, runtime.GOARCH))
	bin := filepath.Join(dir, "coredns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the CoreDNS cache: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("opening the CoreDNS cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking the CoreDNS cache: %w", err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	log.Info("building CoreDNS from the Go module proxy (a few minutes the first time)", "version", c.CoreDNSVersion, "cache", dir)
	work, err := os.MkdirTemp("", "coredns-build-")
	if err != nil {
		return "", fmt.Errorf("creating a build module: %w", err)
	}
	defer os.RemoveAll(work)
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOOS=linux")
	steps := [][]string{
		{"mod", "init", "autocrane.local/coredns-build"},
		{"get", "github.com/coredns/coredns@" + c.CoreDNSVersion},
		{"build", "-trimpath", "-ldflags=-s -w", "-o", bin + ".tmp", "github.com/coredns/coredns"},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, "go", s...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %w: %s", strings.Join(s, " "), err, lastLines(string(out), 15))
		}
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", fmt.Errorf("caching CoreDNS: %w", err)
	}
	return bin, nil
}

// corednsManifest runs CoreDNS as the cluster's DNS: a Deployment in
// kube-system, reading Services and EndpointSlices with its own
// ServiceAccount, behind the kube-dns Service at the fixed address the
// kubelet gives pods. It listens on 1053 so it runs as non-root; names
// outside the cluster domain are not forwarded anywhere (no network).
func corednsManifest(c config) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: coredns
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- kind: ServiceAccount
  name: coredns
  namespace: kube-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: |
    .:1053 {
        errors
        health :8080
        ready :8181
        kubernetes %[1]s in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      containers:
      - name: coredns
        image: %[2]s
        imagePullPolicy: Never
        args: ["-conf", "/etc/coredns/Corefile"]
        ports:
        - {name: dns, containerPort: 1053, protocol: UDP}
        - {name: dns-tcp, containerPort: 1053, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        livenessProbe:
          httpGet: {path: /health, port: 8080}
        securityContext:
          runAsNonRoot: true
          runAsUser: 65532
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}
        resources:
          requests: {cpu: 10m, memory: 32Mi}
          limits: {memory: 128Mi}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: %[3]s
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, targetPort: 1053, protocol: UDP}
  - {name: dns-tcp, port: 53, targetPort: 1053, protocol: TCP}
`, clusterDomain, corednsImage, c.dnsIP())
}
