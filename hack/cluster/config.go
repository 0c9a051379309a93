package main

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
)

// ports are the free ports picked at start; all listen on loopback, except
// the apiserver's, which listens on the bridge address so pods reach it.
type ports struct {
	Etcd             int `json:"etcd"`
	EtcdPeer         int `json:"etcdPeer"`
	APIServer        int `json:"apiServer"`
	Kubelet          int `json:"kubelet"`
	KubeProxyHealthz int `json:"kubeProxyHealthz"`
	KubeProxyMetrics int `json:"kubeProxyMetrics"`
}

// config is the cluster's layout. Paths are absolute.
type config struct {
	WorkDir     string `json:"workDir"`
	CacheDir    string `json:"cacheDir"`
	RepoDir     string `json:"repoDir"`
	ImagesDir   string `json:"imagesDir"`
	Bridge      string `json:"bridge"`
	PodCIDR     string `json:"podCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
	// KubeBin is the directory of the Kubernetes and etcd binaries, from
	// hack/envtest-assets.sh.
	KubeBin        string `json:"kubeBin"`
	CoreDNSVersion string `json:"corednsVersion"`
	Ports          ports  `json:"ports"`
}

const (
	clusterDomain = "cluster.local"
	nodeName      = "localhost"
	networkName   = "autocrane"
	pauseImage    = "autocrane.local/pause:dev"
	// containerdNamespace is the namespace the CRI plugin keeps images in.
	containerdNamespace = "k8s.io"
)

func (c config) path(elem ...string) string {
	return filepath.Join(append([]string{c.WorkDir}, elem...)...)
}

// bridgeIP is the first address of the pod range: the pods' gateway, the
// node IP, and the apiserver's address.
func (c config) bridgeIP() string {
	return netip.MustParsePrefix(c.PodCIDR).Masked().Addr().Next().String()
}

func (c config) bridgePrefix() string {
	return fmt.Sprintf("%s/%d", c.bridgeIP(), netip.MustParsePrefix(c.PodCIDR).Bits())
}

// serviceIP returns the n-th address of the Service range: 1 is the
// kubernetes Service, 10 is CoreDNS.
func (c config) serviceIP(n int) string {
	a := netip.MustParsePrefix(c.ServiceCIDR).Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a.String()
}

func (c config) dnsIP() string { return c.serviceIP(10) }

func (c config) apiServerURL() string {
	return "https://" + net.JoinHostPort(c.bridgeIP(), fmt.Sprint(c.Ports.APIServer))
}

func (c config) bin(name string) string { return filepath.Join(c.KubeBin, name) }

func (c config) kubeconfig() string { return c.path("kubeconfig") }

func (c config) containerdSocket() string { return c.path("containerd", "containerd.sock") }

// validate checks the ranges: IPv4 prefixes, at least 16 addresses for
// pods and Services, and no overlap between them.
func (c config) validate() error {
	pod, err := netip.ParsePrefix(c.PodCIDR)
	if err != nil || !pod.Addr().Is4() || pod.Bits() > 28 {
		return fmt.Errorf("--pod-cidr %q: want an IPv4 prefix of /28 or larger", c.PodCIDR)
	}
	svc, err := netip.ParsePrefix(c.ServiceCIDR)
	if err != nil || !svc.Addr().Is4() || svc.Bits() > 28 || svc.Bits() < 12 {
		return fmt.Errorf("--service-cidr %q: want an IPv4 prefix between /12 and /28", c.ServiceCIDR)
	}
	if pod.Overlaps(svc) {
		return fmt.Errorf("--pod-cidr %s and --service-cidr %s overlap", c.PodCIDR, c.ServiceCIDR)
	}
	if c.Bridge == "" || len(c.Bridge) > 15 {
		return fmt.Errorf("--bridge %q: want an interface name of 1 to 15 characters", c.Bridge)
	}
	return nil
}

// freePort asks the kernel for a free TCP port on host. Another process may
// take it before the component binds it; a start then fails clearly and
// is torn down.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
