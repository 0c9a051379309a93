package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/yaml"
)

func testConfig(t *testing.T) config {
	return config{
		WorkDir: t.TempDir(), Bridge: "autocrane0", PodCIDR: "10.213.0.0/24", ServiceCIDR: "10.213.64.0/24",
		KubeBin: "/assets", CoreDNSVersion: "v1.15.0",
		Ports: ports{Etcd: 2001, EtcdPeer: 2002, APIServer: 2003, Kubelet: 2004, KubeProxyHealthz: 2005, KubeProxyMetrics: 2006},
	}
}

func TestAddresses(t *testing.T) {
	c := testConfig(t)
	if got := c.bridgeIP(); got != "10.213.0.1" {
		t.Errorf("bridge IP %s", got)
	}
	if got := c.bridgePrefix(); got != "10.213.0.1/24" {
		t.Errorf("bridge prefix %s", got)
	}
	if got := c.serviceIP(1); got != "10.213.64.1" {
		t.Errorf("kubernetes Service IP %s", got)
	}
	if got := c.dnsIP(); got != "10.213.64.10" {
		t.Errorf("DNS IP %s", got)
	}
	if got := c.apiServerURL(); got != "https://10.213.0.1:2003" {
		t.Errorf("apiserver URL %s", got)
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*config)
		want   string
	}{
		"defaults":            {func(*config) {}, ""},
		"overlapping ranges":  {func(c *config) { c.ServiceCIDR = "10.213.0.128/25" }, "overlap"},
		"IPv6 pods":           {func(c *config) { c.PodCIDR = "fd00::/64" }, "--pod-cidr"},
		"tiny pod range":      {func(c *config) { c.PodCIDR = "10.213.0.0/30" }, "--pod-cidr"},
		"huge service range":  {func(c *config) { c.ServiceCIDR = "10.0.0.0/8" }, "--service-cidr"},
		"long bridge name":    {func(c *config) { c.Bridge = "a-very-long-bridge-name" }, "--bridge"},
		"not a prefix at all": {func(c *config) { c.ServiceCIDR = "ten" }, "--service-cidr"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := testConfig(t)
			tc.mutate(&c)
			err := c.validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestForwardRules(t *testing.T) {
	off := forwardRules("br", false)
	on := forwardRules("br", true)
	match := func(rules [][]string) []string {
		var out []string
		for _, r := range rules {
			i := slices.Index(r, "-m")
			out = append(out, strings.Join(r[:i], " ")+" "+strings.Join(r[len(r)-2:], " "))
		}
		return out
	}
	if got := match(off); !slices.Equal(got, []string{"! -i br -j DROP", "! -o br -j DROP"}) {
		t.Errorf("forwarding was off: %q", got)
	}
	if got := match(on); !slices.Equal(got, []string{"-i br ! -o br -j DROP", "! -i br -o br -j DROP"}) {
		t.Errorf("forwarding was on: %q", got)
	}
}

// TestComponentConfigs checks that the generated files parse and carry
// the settings measured on these VMs.
func TestComponentConfigs(t *testing.T) {
	c := testConfig(t)
	var kubelet map[string]any
	if err := yaml.Unmarshal([]byte(kubeletConfig(c)), &kubelet); err != nil {
		t.Fatalf("kubelet config: %v", err)
	}
	for key, want := range map[string]any{
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "failSwapOn": false, "address": "127.0.0.1",
		"port": float64(2004), "makeIPTablesUtilChains": false, "readOnlyPort": float64(0),
	} {
		if kubelet[key] != want {
			t.Errorf("kubelet %s = %v, want %v", key, kubelet[key], want)
		}
	}
	if dns, _ := kubelet["clusterDNS"].([]any); len(dns) != 1 || dns[0] != "10.213.64.10" {
		t.Errorf("kubelet clusterDNS %v", kubelet["clusterDNS"])
	}
	for _, brNetfilter := range []bool{true, false} {
		var proxy map[string]any
		if err := yaml.Unmarshal([]byte(kubeProxyConfig(c, brNetfilter)), &proxy); err != nil {
			t.Fatalf("kube-proxy config: %v", err)
		}
		ipt, _ := proxy["iptables"].(map[string]any)
		if proxy["mode"] != "iptables" || ipt["localhostNodePorts"] != false || ipt["masqueradeAll"] != !brNetfilter {
			t.Errorf("kube-proxy config (br_netfilter %v): %v", brNetfilter, proxy)
		}
		if ports, _ := proxy["nodePortAddresses"].([]any); len(ports) != 1 || ports[0] != "10.213.0.1/32" {
			t.Errorf("nodePortAddresses %v", proxy["nodePortAddresses"])
		}
	}
	var cni map[string]any
	if err := json.Unmarshal([]byte(cniConfig(c)), &cni); err != nil {
		t.Fatalf("CNI config: %v", err)
	}
	plugins, _ := cni["plugins"].([]any)
	bridge, _ := plugins[0].(map[string]any)
	if bridge["bridge"] != "autocrane0" || bridge["ipMasq"] != false || bridge["isGateway"] != true {
		t.Errorf("bridge plugin %v", bridge)
	}
	toml := containerdConfig(c)
	for _, want := range []string{"restrict_oom_score_adj = true", `bin_dir = "/usr/lib/cni"`, "SystemdCgroup = false",
		`sandbox_image = "autocrane.local/pause:dev"`, c.WorkDir} {
		if !strings.Contains(toml, want) {
			t.Errorf("containerd config lacks %q", want)
		}
	}
	if err := writeConfigs(c, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.path("cni", "net.d", "10-autocrane.conflist")); err != nil {
		t.Error(err)
	}
}

func TestJournalRoundTrip(t *testing.T) {
	c := testConfig(t)
	j := newJournal(c.WorkDir, c)
	if err := j.addProcess(process{Name: "etcd", PID: 42, StartTime: 7}); err != nil {
		t.Fatal(err)
	}
	j.IPTablesRules = [][]string{{"!", "-i", "br", "-j", "DROP"}}
	j.Sysctls["net/ipv4/ip_forward"] = "0"
	if err := j.save(); err != nil {
		t.Fatal(err)
	}
	got, err := loadJournal(c.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.PodCIDR != c.PodCIDR || len(got.Processes) != 1 || got.Processes[0].PID != 42 ||
		got.Sysctls["net/ipv4/ip_forward"] != "0" || len(got.IPTablesRules) != 1 {
		t.Errorf("loaded %+v", got)
	}
	if err := got.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := loadJournal(c.WorkDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after remove: %v, want not-exist", err)
	}
	if err := down(t.Context(), logr.Discard(), c.WorkDir); err != nil {
		t.Errorf("down without a journal: %v, want nothing to do", err)
	}
}

func TestResetWorkDirRefusesForeignDirectories(t *testing.T) {
	foreign := t.TempDir()
	if err := os.WriteFile(filepath.Join(foreign, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := resetWorkDir(foreign); err == nil || !strings.Contains(err.Error(), "not a cluster work directory") {
		t.Errorf("error %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, "precious")); err != nil {
		t.Errorf("the foreign file is gone: %v", err)
	}

	ours := filepath.Join(t.TempDir(), "cluster")
	if err := resetWorkDir(ours); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ours, "old.log"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := resetWorkDir(ours); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(ours, "old.log")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old.log survived a reset: %v", err)
	}
}

// TestStopProcess starts a real child, records it as up does, and stops it.
func TestStopProcess(t *testing.T) {
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	start, err := processStartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p := process{Name: "sleep", PID: cmd.Process.Pid, StartTime: start}
	if !alive(p) {
		t.Fatal("a running child is not alive")
	}
	if other := (process{Name: "sleep", PID: p.PID, StartTime: start + 1}); alive(other) {
		t.Error("a process with another start time (a reused PID) counts as alive")
	}
	if err := stopProcess(t.Context(), logr.Discard(), p, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not exit")
	}
	if err := stopProcess(t.Context(), logr.Discard(), p, time.Second); err != nil {
		t.Errorf("stopping a gone process: %v", err)
	}
}
