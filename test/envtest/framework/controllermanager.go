package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// kcmReadyTimeout bounds how long Start waits for the controller manager
	// to do visible work. It normally takes a few seconds.
	kcmReadyTimeout = 60 * time.Second
	// kcmStopGrace is how long the controller manager may take to exit after
	// SIGTERM before its process group is killed.
	kcmStopGrace = 5 * time.Second
	// kcmTailBytes is how much of the controller manager's most recent output
	// errors quote.
	kcmTailBytes = 8 << 10
	// saSignerKeyFile is the service-account signing key that envtest
	// v0.25 writes into the API server's cert dir (controlplane.saKeyFile,
	// unexported); the API server verifies tokens with its public half.
	saSignerKeyFile = "sa-signer.key"
	// kcmUser is the name the controller manager authenticates as; its
	// system:masters group is what authorizes it.
	kcmUser = "system:kube-controller-manager"
)

// controllerManager is a running kube-controller-manager process.
type controllerManager struct {
	cmd  *exec.Cmd
	tail *TailBuffer
	// logFile is the default log file, nil when the caller gave Options.Log.
	logFile *os.File
	// done is closed when the process has exited; waitErr is then set.
	done    chan struct{}
	waitErr error
	// notReady records that waitReady failed and already quoted the log, so
	// stop neither repeats that nor deletes the log the error points to.
	notReady bool
}

// startControllerManager starts kube-controller-manager against e's API
// server and waits until its controllers are working.
func (e *Env) startControllerManager(ctx context.Context, logTo io.Writer) error {
	args, err := e.controllerManagerArgs()
	if err != nil {
		return err
	}
	kcm := &controllerManager{tail: &TailBuffer{Max: kcmTailBytes}, done: make(chan struct{})}
	if logTo == nil {
		f, err := os.CreateTemp("", "autocrane-kcm-*.log")
		if err != nil {
			return fmt.Errorf("create kube-controller-manager log file: %w", err)
		}
		kcm.logFile = f
		e.ControllerManagerLogPath = f.Name()
		logTo = f
	}
	// One writer for both streams: exec then copies them from a single pipe
	// with a single goroutine, so the tail buffer sees lines in order.
	out := io.MultiWriter(logTo, kcm.tail)
	cmd := exec.Command(filepath.Join(e.AssetsDir, controllerManagerBinary), args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	// Bounds Wait if something else inherited the output pipe.
	cmd.WaitDelay = kcmStopGrace
	kcm.cmd = cmd
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("start kube-controller-manager: %w", err)
		if kcm.logFile != nil { // empty, nothing ran
			err = errors.Join(err, kcm.closeLog(), os.Remove(kcm.logFile.Name()))
		}
		return err
	}
	go func() {
		kcm.waitErr = cmd.Wait()
		close(kcm.done)
	}()
	e.kcm = kcm // from here on, Stop stops it

	return kcm.waitReady(ctx, e.Client, e.ControllerManagerLogPath)
}

// controllerManagerArgs writes the files the controller manager needs and
// returns its command line.
func (e *Env) controllerManagerArgs() ([]string, error) {
	_, kubeconfig, err := e.addUser(kcmUser, "system:masters")
	if err != nil {
		return nil, fmt.Errorf("provision kube-controller-manager user: %w", err)
	}
	kubeconfigPath, err := e.writeFile("kube-controller-manager.kubeconfig", kubeconfig)
	if err != nil {
		return nil, err
	}
	// The CA that signed the API server's serving certificate: the root CA
	// controller publishes it to every namespace as kube-root-ca.crt, and
	// service-account token secrets carry it, exactly as in a cluster.
	rootCAPath, err := e.writeFile("root-ca.crt", e.Config.CAData)
	if err != nil {
		return nil, err
	}
	saKey := filepath.Join(e.Environment.ControlPlane.GetAPIServer().CertDir, saSignerKeyFile)
	if _, err := os.Stat(saKey); err != nil {
		return nil, fmt.Errorf("envtest service-account signing key: %w", err)
	}
	// Without a private directory the controller manager creates its default
	// flex-volume directory under /usr/libexec on the host.
	flexDir := filepath.Join(e.workDir, "flexvolume")
	if err := os.Mkdir(flexDir, 0o700); err != nil {
		return nil, fmt.Errorf("create flex-volume dir: %w", err)
	}
	return []string{
		"--kubeconfig=" + kubeconfigPath,
		"--controllers=*",
		// A single instance; leader election would only delay start-up.
		"--leader-elect=false",
		// No serving endpoint: nothing scrapes it, and it would need a port
		// and serving certificates.
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file=" + saKey,
		"--root-ca-file=" + rootCAPath,
		"--flex-volume-plugin-dir=" + flexDir,
	}, nil
}

// waitReady polls until the serviceaccount controller has created the
// "default" ServiceAccount in the "default" namespace: proof that the
// controller manager reached the API server and its controllers run.
func (kcm *controllerManager) waitReady(ctx context.Context, c client.Client, logPath string) error {
	ctx, cancel := context.WithTimeout(ctx, kcmReadyTimeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	key := client.ObjectKey{Namespace: "default", Name: "default"}
	var lastErr error
	for {
		err := c.Get(ctx, key, &corev1.ServiceAccount{})
		if err == nil {
			return nil
		}
		if !apierrors.IsNotFound(err) {
			lastErr = err
		}
		select {
		case <-kcm.done:
			kcm.notReady = true
			return fmt.Errorf("kube-controller-manager exited before it was ready: %w%s",
				exitError(kcm.waitErr), kcm.logHint(logPath))
		case <-ctx.Done():
			kcm.notReady = true
			err := fmt.Errorf("kube-controller-manager not ready (no default/default ServiceAccount): %w", context.Cause(ctx))
			if lastErr != nil {
				err = fmt.Errorf("%w; last API error: %w", err, lastErr)
			}
			return fmt.Errorf("%w%s", err, kcm.logHint(logPath))
		case <-ticker.C:
		}
	}
}

// stop terminates the controller manager's process group: SIGTERM, then
// SIGKILL after kcmStopGrace. It reports an exit that happened before stop
// was called, since the tests then ran without controllers.
func (kcm *controllerManager) stop() error {
	var crashed error
	select {
	case <-kcm.done:
		crashed = fmt.Errorf("kube-controller-manager exited while the tests ran: %w", exitError(kcm.waitErr))
	default:
		_ = signalGroup(kcm.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-kcm.done:
		case <-time.After(kcmStopGrace):
		}
	}
	// Also when the leader already exited: nothing of the group may survive.
	// ESRCH (no such group) is the expected, common case.
	if err := signalGroup(kcm.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill kube-controller-manager process group %d: %w", kcm.cmd.Process.Pid, err)
	}
	<-kcm.done

	logPath := ""
	if kcm.logFile != nil {
		logPath = kcm.logFile.Name()
	}
	closeErr := kcm.closeLog()
	if kcm.notReady {
		return closeErr // Start's error already quotes the log, which stays
	}
	if crashed != nil {
		// Keep the log: it is the only record of why.
		return errors.Join(fmt.Errorf("%w%s", crashed, kcm.logHint(logPath)), closeErr)
	}
	if logPath != "" {
		if err := os.Remove(logPath); err != nil {
			return errors.Join(closeErr, fmt.Errorf("remove kube-controller-manager log: %w", err))
		}
	}
	return closeErr
}

func (kcm *controllerManager) closeLog() error {
	if kcm.logFile == nil {
		return nil
	}
	if err := kcm.logFile.Close(); err != nil {
		return fmt.Errorf("close kube-controller-manager log: %w", err)
	}
	return nil
}

// logHint formats the end of the controller manager's output, and where the
// rest is, for an error message.
func (kcm *controllerManager) logHint(logPath string) string {
	where := ""
	if logPath != "" {
		where = " (full log: " + logPath + ")"
	}
	return fmt.Sprintf("\n--- last kube-controller-manager output%s ---\n%s", where, kcm.tail.String())
}

// exitError makes a nil Wait result (exit status 0) an error too: the
// controller manager is not supposed to exit on its own at all.
func exitError(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}
