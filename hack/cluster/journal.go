package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// journalFile is the name of the journal inside the work directory.
const journalFile = "cluster.json"

// process is a daemon the cluster started. StartTime (clock ticks since
// boot, /proc/PID/stat field 22) tells it apart from a later process that
// reuses its PID.
type process struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
}

// journal records every change to the host before it is made, so that down
// undoes exactly what up did, however far up got.
type journal struct {
	path string

	// Config is the configuration up ran with; down needs its addresses.
	Config config `json:"config"`
	// Processes are the daemons started, in start order.
	Processes []process `json:"processes,omitempty"`
	// Sysctls holds the original value of every sysctl that up or the
	// components change, keyed by its /proc/sys path.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// AbsentPaths are host paths that components create if missing; down
	// removes those among them that exist by then.
	AbsentPaths []string `json:"absentPaths,omitempty"`
	// Bridge is set once up creates the bridge.
	Bridge bool `json:"bridge,omitempty"`
	// IPTablesRules are the FORWARD rules up inserted (table forwardTable),
	// as iptables arguments after the chain name.
	IPTablesRules [][]string `json:"iptablesRules,omitempty"`
	// IPTablesBefore lists, per command (iptables, ip6tables) and table,
	// the chains that existed before up.
	IPTablesBefore map[string]map[string][]string `json:"iptablesBefore,omitempty"`
	// KubeProxy is set once kube-proxy may have written rules.
	KubeProxy bool `json:"kubeProxy,omitempty"`
	// Kubelet is set once the kubelet may have created cgroups and mounts.
	Kubelet bool `json:"kubelet,omitempty"`
}

// newJournal starts an empty journal in dir.
func newJournal(dir string, cfg config) *journal {
	return &journal{path: filepath.Join(dir, journalFile), Config: cfg, Sysctls: map[string]string{}}
}

// loadJournal reads the journal of dir; it returns fs.ErrNotExist when up
// never got as far as writing one.
func loadJournal(dir string) (*journal, error) {
	p := filepath.Join(dir, journalFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	j := &journal{}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("reading the journal %s: %w", p, err)
	}
	j.path = p
	if j.Sysctls == nil {
		j.Sysctls = map[string]string{}
	}
	return j, nil
}

// save writes the journal atomically. Callers save before each change to
// the host, so a crash leaves a journal that covers it.
func (j *journal) save() error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the journal: %w", err)
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("writing the journal: %w", err)
	}
	return nil
}

// remove deletes the journal once everything it lists is undone.
func (j *journal) remove() error {
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the journal: %w", err)
	}
	return nil
}

// addProcess records a started daemon and saves.
func (j *journal) addProcess(p process) error {
	j.Processes = append(j.Processes, p)
	return j.save()
}
