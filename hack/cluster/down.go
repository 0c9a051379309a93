package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-logr/logr"
)

// stopGrace is how long a component gets to exit after SIGTERM.
const stopGrace = 15 * time.Second

// down undoes what the journal in workDir records, in reverse order, and
// goes on past errors so one stuck step does not leave the rest behind. The
// journal is removed only when everything succeeded, so down can be run
// again after fixing what failed. Without a journal there is nothing to do.
func down(ctx context.Context, log logr.Logger, workDir string) error {
	j, err := loadJournal(workDir)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no cluster recorded; nothing to tear down", "journal", filepath.Join(workDir, journalFile))
		return nil
	}
	if err != nil {
		return err
	}
	c := j.Config
	var errs []error
	note := func(err error) {
		if err != nil {
			log.Error(err, "teardown step failed; going on")
			errs = append(errs, err)
		}
	}

	procs := slices.Clone(j.Processes)
	slices.Reverse(procs)
	for _, p := range procs {
		if p.Name == "containerd" {
			note(removeContainers(ctx, log, c))
		}
		note(stopProcess(ctx, log, p, stopGrace))
		if p.Name == "kube-proxy" {
			note(kubeProxyCleanup(ctx, log, c))
		}
	}
	if j.Kubelet || hasProcess(j, "containerd") {
		// Containers whose containerd died before it could stop them.
		note(removeContainers(ctx, log, c))
	}
	note(unmountUnder(log, c.WorkDir))
	if j.Kubelet {
		note(removeCgroups(log))
	}
	note(tearDownNetwork(ctx, log, j))
	note(removeCreatedPaths(log, j))
	if len(errs) == 0 {
		// Kept after a failed step: a second down needs containerd's state.
		note(clearWorkDir(log, c.WorkDir))
	}
	if len(errs) > 0 {
		return fmt.Errorf("teardown incomplete (the journal %s is kept; run hack/cluster-down again): %w", j.path, errors.Join(errs...))
	}
	if err := j.remove(); err != nil {
		return err
	}
	log.Info("cluster removed; the machine is as before", "logs", c.path("logs"))
	return nil
}

func hasProcess(j *journal, name string) bool {
	return slices.ContainsFunc(j.Processes, func(p process) bool { return p.Name == name })
}

// kubeProxyCleanup removes kube-proxy's iptables chains and rules (its own
// --cleanup mode), logging to logs/kube-proxy-cleanup.log.
func kubeProxyCleanup(ctx context.Context, log logr.Logger, c config) error {
	bin := c.bin("kube-proxy")
	if _, err := os.Stat(bin); err != nil {
		return nil // never built, so never ran
	}
	log.Info("removing kube-proxy's rules", "command", bin+" --cleanup")
	out, err := exec.CommandContext(ctx, bin, "--cleanup", "--v=2").CombinedOutput()
	_ = os.WriteFile(c.path("logs", "kube-proxy-cleanup.log"), out, 0o644)
	if err != nil {
		return fmt.Errorf("kube-proxy --cleanup: %w: %s", err, lastLines(string(out), 5))
	}
	return nil
}

// clearWorkDir removes everything in the work directory but the logs and
// the journal (removed last, once everything else succeeded).
func clearWorkDir(log logr.Logger, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	if err := refuseMounts(dir); err != nil {
		return err
	}
	log.Info("removing the cluster's files (the logs stay)", "dir", dir)
	var errs []error
	for _, e := range entries {
		switch e.Name() {
		case "logs", journalFile, workDirMarker:
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
