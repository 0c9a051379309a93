package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/go-logr/logr"
)

const ipForward = "net/ipv4/ip_forward"

// forwardTable holds the FORWARD rules. The mangle table's FORWARD chain
// runs before the filter table's, where kube-proxy prepends its own ACCEPT
// rules (for marked and established traffic); so ours always come first.
const forwardTable = "mangle"

// run runs a host command and returns its stdout; the error carries stderr.
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// forwardRules keep every forwarded packet inside the machine: nothing
// enters or leaves the bridge from or to another interface, while
// bridge-to-bridge traffic (pod to pod, pod to Service to pod) is allowed.
// When forwarding was off before, turning it on must not make the host a
// router between its other interfaces either, so then only
// bridge-to-bridge traffic is forwarded at all.
func forwardRules(bridge string, forwardingWasOn bool) [][]string {
	comment := []string{"-m", "comment", "--comment", "autocrane test cluster: keep traffic on this machine"}
	drop := func(match ...string) []string {
		return append(append(match, comment...), "-j", "DROP")
	}
	if forwardingWasOn {
		return [][]string{drop("-i", bridge, "!", "-o", bridge), drop("!", "-i", bridge, "-o", bridge)}
	}
	return [][]string{drop("!", "-i", bridge), drop("!", "-o", bridge)}
}

// setUpNetwork creates the bridge with its address, the Service CIDR route,
// the FORWARD rules, and turns forwarding on, journaling each change first.
func setUpNetwork(ctx context.Context, log logr.Logger, j *journal) error {
	c := j.Config
	if err := recordSysctl(j, ipForward); err != nil {
		return err
	}
	if err := recordIPTables(ctx, j); err != nil {
		return err
	}
	// Rules first, so that no packet is forwarded before they hold.
	for _, rule := range forwardRules(c.Bridge, j.Sysctls[ipForward] != "0") {
		j.IPTablesRules = append(j.IPTablesRules, rule)
		if err := j.save(); err != nil {
			return err
		}
		log.Info("adding iptables rule", "table", forwardTable, "chain", "FORWARD", "rule", strings.Join(rule, " "))
		if _, err := runCmd(ctx, "iptables", append([]string{"-w", "-t", forwardTable, "-I", "FORWARD"}, rule...)...); err != nil {
			return err
		}
	}
	if err := setSysctl(log, j, ipForward, "1"); err != nil {
		return err
	}
	j.Bridge = true
	if err := j.save(); err != nil {
		return err
	}
	log.Info("creating bridge", "bridge", c.Bridge, "address", c.bridgePrefix())
	steps := [][]string{
		{"link", "add", c.Bridge, "type", "bridge"},
		{"addr", "add", c.bridgePrefix(), "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
		// Without this route, host traffic to a ClusterIP that kube-proxy has
		// no rule for yet follows the default route off the machine.
		{"route", "add", c.ServiceCIDR, "dev", c.Bridge, "src", c.bridgeIP()},
	}
	for _, s := range steps {
		if _, err := runCmd(ctx, "ip", s...); err != nil {
			return err
		}
	}
	log.Info("routed the Service range to the bridge", "serviceCIDR", c.ServiceCIDR)
	return nil
}

// tearDownNetwork deletes the rules, the bridge (and with it its address and
// route) and restores the sysctls. Everything missing already is fine.
func tearDownNetwork(ctx context.Context, log logr.Logger, j *journal) error {
	var errs []error
	for _, rule := range j.IPTablesRules {
		for {
			check := append([]string{"-w", "-t", forwardTable, "-C", "FORWARD"}, rule...)
			if _, err := runCmd(ctx, "iptables", check...); err != nil {
				break // gone (or iptables missing: then it was never added)
			}
			log.Info("deleting iptables rule", "chain", "FORWARD", "rule", strings.Join(rule, " "))
			if _, err := runCmd(ctx, "iptables", append([]string{"-w", "-t", forwardTable, "-D", "FORWARD"}, rule...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	if j.Bridge && linkExists(j.Config.Bridge) {
		// A killed pod's network namespace can outlive its processes while
		// its orphaned TCP sockets time out, and with it the veth pair;
		// deleting the host end takes both away now.
		ports, err := bridgePorts(ctx, j.Config.Bridge)
		errs = append(errs, err)
		for _, port := range ports {
			log.Info("deleting veth", "interface", port)
			if _, err := runCmd(ctx, "ip", "link", "del", port); err != nil && linkExists(port) {
				errs = append(errs, err)
			}
		}
		log.Info("deleting bridge", "bridge", j.Config.Bridge)
		if _, err := runCmd(ctx, "ip", "link", "del", j.Config.Bridge); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, restoreIPTables(ctx, log, j))
	errs = append(errs, restoreSysctls(log, j))
	return errors.Join(errs...)
}

// bridgePorts lists the interfaces attached to bridge.
func bridgePorts(ctx context.Context, bridge string) ([]string, error) {
	out, err := runCmd(ctx, "ip", "-j", "link", "show", "master", bridge)
	if err != nil {
		return nil, err
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("reading ip link output: %w", err)
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Name)
	}
	return names, nil
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// setSysctl journals the original value, then writes the new one.
func setSysctl(log logr.Logger, j *journal, key, value string) error {
	if err := recordSysctl(j, key); err != nil {
		return err
	}
	log.Info("setting sysctl", "key", key, "value", value, "was", j.Sysctls[key])
	if err := os.WriteFile("/proc/sys/"+key, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}

// recordSysctl journals a sysctl's current value unless already journaled.
// The kubelet and kube-proxy change some sysctls themselves; recording them
// first lets down put them back.
func recordSysctl(j *journal, key string) error {
	if _, done := j.Sysctls[key]; done {
		return nil
	}
	b, err := os.ReadFile("/proc/sys/" + key)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no such sysctl on this kernel; nobody can change it
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	j.Sysctls[key] = strings.TrimSpace(string(b))
	return j.save()
}

func restoreSysctls(log logr.Logger, j *journal) error {
	var errs []error
	for key, want := range j.Sysctls {
		b, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", key, err))
			continue
		}
		if strings.TrimSpace(string(b)) == want {
			continue
		}
		log.Info("restoring sysctl", "key", key, "value", want)
		if err := os.WriteFile("/proc/sys/"+key, []byte(want), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// checkRangesFree refuses ranges that overlap an address or a route of the
// host, and a bridge name already in use.
func checkRangesFree(ctx context.Context, c config) error {
	if linkExists(c.Bridge) {
		return fmt.Errorf("interface %s exists already: another cluster runs (hack/cluster-down), or pick --bridge", c.Bridge)
	}
	out, err := runCmd(ctx, "ip", "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return err
	}
	taken, err := parseRouteDestinations([]byte(out))
	if err != nil {
		return err
	}
	addrOut, err := runCmd(ctx, "ip", "-j", "-4", "addr", "show")
	if err != nil {
		return err
	}
	addrs, err := parseAddrPrefixes([]byte(addrOut))
	if err != nil {
		return err
	}
	taken = append(taken, addrs...)
	for _, r := range []string{c.PodCIDR, c.ServiceCIDR} {
		mine := netip.MustParsePrefix(r)
		for _, t := range taken {
			if t.Bits() == 0 {
				continue // the default route covers everything by design
			}
			if t.Overlaps(mine) {
				return fmt.Errorf("%s overlaps %s, already used on this machine; pick another with --pod-cidr/--service-cidr", r, t)
			}
		}
	}
	return nil
}

// parseRouteDestinations reads `ip -j route` output. "default" is 0.0.0.0/0;
// a destination without a length is a host route (/32).
func parseRouteDestinations(b []byte) ([]netip.Prefix, error) {
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal(b, &routes); err != nil {
		return nil, fmt.Errorf("reading ip route output: %w", err)
	}
	var out []netip.Prefix
	for _, r := range routes {
		p, ok := parseDestination(r.Dst)
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

func parseDestination(dst string) (netip.Prefix, bool) {
	switch dst {
	case "", "default":
		return netip.Prefix{}, false
	}
	if strings.Contains(dst, "/") {
		p, err := netip.ParsePrefix(dst)
		return p.Masked(), err == nil
	}
	a, err := netip.ParseAddr(dst)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// parseAddrPrefixes reads `ip -j addr` output into the interfaces' subnets.
func parseAddrPrefixes(b []byte) ([]netip.Prefix, error) {
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(b, &links); err != nil {
		return nil, fmt.Errorf("reading ip addr output: %w", err)
	}
	var out []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			if err != nil || a.PrefixLen < 0 || a.PrefixLen > addr.BitLen() {
				continue
			}
			out = append(out, netip.PrefixFrom(addr, a.PrefixLen).Masked())
		}
	}
	return out, nil
}
