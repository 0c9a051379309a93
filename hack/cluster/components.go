package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The control plane's command lines. Every listener is on loopback except
// the apiserver, which pods reach through the kubernetes Service.

func etcdArgs(c config) []string {
	client := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.Etcd)
	peer := fmt.Sprintf("http://127.0.0.1:%d", c.Ports.EtcdPeer)
	return []string{c.bin("etcd"),
		"--name=autocrane",
		"--data-dir=" + c.path("etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=autocrane=" + peer,
		"--unsafe-no-fsync", // a throwaway test cluster; saves the 2-core VM's disk
	}
}

func apiServerArgs(c config) []string {
	pki := c.path("pki")
	return []string{c.bin("kube-apiserver"),
		"--bind-address=" + c.bridgeIP(),
		"--advertise-address=" + c.bridgeIP(),
		fmt.Sprintf("--secure-port=%d", c.Ports.APIServer),
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.Ports.Etcd),
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--cert-dir=" + c.path("apiserver"),
		"--tls-cert-file=" + filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
		"--service-account-key-file=" + filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// The kubelet listens on 127.0.0.1 and the node is called localhost.
		"--kubelet-preferred-address-types=Hostname",
		"--kubelet-client-certificate=" + filepath.Join(pki, "apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + filepath.Join(pki, "apiserver-kubelet-client.key"),
		"--profiling=false",
	}
}

func controllerManagerArgs(c config) []string {
	pki := c.path("pki")
	return []string{c.bin("kube-controller-manager"),
		"--kubeconfig=" + c.path("controller-manager.kubeconfig"),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + filepath.Join(pki, "sa.key"),
		"--root-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--cluster-name=autocrane-e2e",
		// Without it, the controller manager creates a folder under /usr/libexec.
		"--flex-volume-plugin-dir=" + c.path("flexvolume"),
	}
}

func schedulerArgs(c config) []string {
	return []string{c.bin("kube-scheduler"),
		"--kubeconfig=" + c.path("scheduler.kubeconfig"),
		"--authentication-kubeconfig=" + c.path("scheduler.kubeconfig"),
		"--authorization-kubeconfig=" + c.path("scheduler.kubeconfig"),
		"--leader-elect=false",
		"--secure-port=0",
	}
}

func kubeletArgs(c config) []string {
	return []string{c.bin("kubelet"),
		"--config=" + c.path("kubelet.yaml"),
		"--kubeconfig=" + c.path("kubelet.kubeconfig"),
		"--hostname-override=" + nodeName,
		"--node-ip=" + c.bridgeIP(),
		"--root-dir=" + c.path("kubelet"),
		"--cert-dir=" + c.path("kubelet", "pki"),
	}
}

func kubeProxyArgs(c config) []string {
	return []string{c.bin("kube-proxy"),
		"--config=" + c.path("kube-proxy.yaml"),
		"--hostname-override=" + nodeName,
	}
}

// kubeletConfig follows the facts measured on these VMs: cgroup v1 hybrid
// (failCgroupV1: false), cgroupfs, swap tolerated, loopback listeners, and
// no iptables chains of its own (kube-proxy owns the rules, and down need not
// chase the kubelet's). Image GC stays off: the images are imported, never
// pulled, so a collected image could not come back.
func kubeletConfig(c config) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
clusterDNS: [%s]
clusterDomain: %s
resolvConf: ""
containerRuntimeEndpoint: unix://%s
makeIPTablesUtilChains: false
podLogsDir: %s
volumePluginDir: %s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
rotateCertificates: false
serverTLSBootstrap: false
`, c.Ports.Kubelet, c.path("pki", "ca.crt"), c.dnsIP(), clusterDomain, c.containerdSocket(),
		c.path("pod-logs"), c.path("kubelet-volume-plugins"))
}

// kubeProxyConfig: iptables mode, NodePorts only on the bridge address, and
// conntrack values of 0 so kube-proxy leaves global sysctls alone. Without
// br_netfilter, replies between pods on the bridge bypass conntrack, so a
// pod reaching another through a Service would see the reply come from the
// wrong address; masquerading all Service traffic avoids that.
func kubeProxyConfig(c config, brNetfilter bool) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: %s
clusterCIDR: %s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
nodePortAddresses: [%s/32]
iptables:
  localhostNodePorts: false
  masqueradeAll: %t
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, c.path("kube-proxy.kubeconfig"), c.PodCIDR, c.Ports.KubeProxyHealthz, c.Ports.KubeProxyMetrics, c.bridgeIP(), !brNetfilter)
}

// containerdConfig is a private instance: its own root, state, socket and
// runc root, the CNI config of this cluster only, and the local pause image.
// restrict_oom_score_adj is needed on these VMs, which lack
// CAP_SYS_RESOURCE. The plugins that would write outside the work
// directory (opt, which installs into /opt/containerd) are off.
func containerdConfig(c config) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
`, c.path("containerd", "root"), c.path("containerd", "state"), c.containerdSocket(),
		c.containerdSocket()+".ttrpc", pauseImage, c.path("cni", "net.d"), c.path("containerd", "runc"))
}

// cniConfig is Debian's bridge plugin with host-local IPAM, its leases kept
// in the work directory. No ipMasq: nothing leaves the machine anyway.
func cniConfig(c config) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": %q,
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
`, networkName, c.Bridge, c.path("cni", "networks"), c.PodCIDR, c.bridgeIP())
}

// writeConfigs writes the components' configuration files.
func writeConfigs(c config, brNetfilter bool) error {
	files := map[string]string{
		c.path("kubelet.yaml"):                                kubeletConfig(c),
		c.path("kube-proxy.yaml"):                             kubeProxyConfig(c, brNetfilter),
		c.path("containerd", "config.toml"):                   containerdConfig(c),
		c.path("cni", "net.d", "10-"+networkName+".conflist"): cniConfig(c),
	}
	for file, content := range files {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(file), err)
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", file, err)
		}
	}
	for _, dir := range []string{"flexvolume", "kubelet-volume-plugins", "pod-logs", "kubelet", "etcd"} {
		if err := os.MkdirAll(c.path(dir), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	return nil
}

// joinArgs is for the log: the command line a person can copy.
func joinArgs(argv []string) string { return strings.Join(argv, " ") }
