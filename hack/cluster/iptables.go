package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/go-logr/logr"
)

// ruleset is what iptables-save prints, per table: the chains, and the
// rules as argument lists after "-A".
type ruleset map[string]*table

type table struct {
	chains []string
	rules  [][]string
}

// families are the iptables commands whose state up records and down
// restores, with the nft family of their tables.
func families() map[string]string { return map[string]string{"iptables": "ip", "ip6tables": "ip6"} }

// builtinChains are the chains every table may have without anyone
// creating them.
func builtinChains() []string {
	return []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
}

// parseSave reads iptables-save output.
func parseSave(out string) (ruleset, error) {
	rs := ruleset{}
	var cur *table
	for i, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "COMMIT":
		case strings.HasPrefix(line, "*"):
			cur = &table{}
			rs[line[1:]] = cur
		case cur == nil:
			return nil, fmt.Errorf("iptables-save line %d: %q outside a table", i+1, line)
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains = append(cur.chains, name)
		case strings.HasPrefix(line, "-A "):
			args, err := splitArgs(line[3:])
			if err != nil {
				return nil, fmt.Errorf("iptables-save line %d: %w", i+1, err)
			}
			cur.rules = append(cur.rules, args)
		default:
			return nil, fmt.Errorf("iptables-save line %d: unexpected %q", i+1, line)
		}
	}
	return rs, nil
}

// splitArgs splits an iptables-save rule into arguments: words separated by
// spaces, double quotes around words with spaces, backslash escapes.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == '"':
			quoted = !quoted
			inWord = true
		case ch == ' ' && !quoted:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// recordIPTables journals which tables and chains exist before up.
func recordIPTables(ctx context.Context, j *journal) error {
	j.IPTablesBefore = map[string]map[string][]string{}
	for cmd := range families() {
		out, err := runCmd(ctx, cmd+"-save")
		if err != nil {
			return err
		}
		rs, err := parseSave(out)
		if err != nil {
			return err
		}
		j.IPTablesBefore[cmd] = map[string][]string{}
		for name, t := range rs {
			j.IPTablesBefore[cmd][name] = t.chains
		}
	}
	return j.save()
}

// isComponentChain tells the chains Kubernetes components and CNI plugins
// create (kube-proxy --cleanup leaves KUBE-FIREWALL, which the kubelet and
// kube-proxy share).
func isComponentChain(name string) bool {
	return strings.HasPrefix(name, "KUBE-") || strings.HasPrefix(name, "CNI-")
}

// restoreIPTables removes the component chains that did not exist before
// up, with every rule that jumps to them, then the tables that did not
// exist and are empty again (nft, when installed: iptables-nft cannot
// delete a table).
func restoreIPTables(ctx context.Context, log logr.Logger, j *journal) error {
	if j.IPTablesBefore == nil {
		return nil // up stopped before recording them, so changed nothing
	}
	var errs []error
	for cmd, nftFamily := range families() {
		before := j.IPTablesBefore[cmd]
		out, err := runCmd(ctx, cmd+"-save")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		now, err := parseSave(out)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for name, t := range now {
			var added []string
			for _, ch := range t.chains {
				if isComponentChain(ch) && !slices.Contains(before[name], ch) {
					added = append(added, ch)
				}
			}
			if len(added) == 0 {
				continue
			}
			for _, rule := range t.rules {
				if len(rule) > 1 && jumpsTo(rule, added) && !slices.Contains(added, rule[0]) {
					log.Info("deleting rule", "command", cmd, "table", name, "rule", strings.Join(rule, " "))
					if _, err := runCmd(ctx, cmd, append([]string{"-w", "-t", name, "-D"}, rule...)...); err != nil {
						errs = append(errs, err)
					}
				}
			}
			for _, ch := range added {
				_, _ = runCmd(ctx, cmd, "-w", "-t", name, "-F", ch)
			}
			for _, ch := range added {
				log.Info("deleting chain", "command", cmd, "table", name, "chain", ch)
				if _, err := runCmd(ctx, cmd, "-w", "-t", name, "-X", ch); err != nil {
					errs = append(errs, err)
				}
			}
		}
		errs = append(errs, deleteEmptyTables(ctx, log, cmd, nftFamily, before))
	}
	return errors.Join(errs...)
}

func jumpsTo(rule, chains []string) bool {
	for i := 0; i+1 < len(rule); i++ {
		if (rule[i] == "-j" || rule[i] == "-g") && slices.Contains(chains, rule[i+1]) {
			return true
		}
	}
	return false
}

// deleteEmptyTables deletes, with nft, the tables that iptables-nft created
// during the run and that hold nothing but empty built-in chains now.
func deleteEmptyTables(ctx context.Context, log logr.Logger, cmd, nftFamily string, before map[string][]string) error {
	out, err := runCmd(ctx, cmd+"-save")
	if err != nil {
		return err
	}
	now, err := parseSave(out)
	if err != nil {
		return err
	}
	var errs []error
	for name, t := range now {
		if _, existed := before[name]; existed || len(t.rules) > 0 {
			continue
		}
		if slices.ContainsFunc(t.chains, func(ch string) bool { return !slices.Contains(builtinChains(), ch) }) {
			continue
		}
		if _, err := exec.LookPath("nft"); err != nil {
			log.Info("leaving an empty table (install nftables to remove it)", "command", cmd, "table", name)
			continue
		}
		log.Info("deleting empty table", "family", nftFamily, "table", name)
		if _, err := runCmd(ctx, "nft", "delete", "table", nftFamily, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
