//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
)

// errStop ends a poll at once: waiting longer cannot help.
var errStop = errors.New("stopped")

// requestGrace is how long a pod may wait for its first data request.
const requestGrace = 90 * time.Second

// injectedInit returns the injected datadeployer init container (native
// sidecar or classic init), or nil.
func injectedInit(p *corev1.Pod) *corev1.Container {
	for i, c := range p.Spec.InitContainers {
		if c.Name == injector.ContainerDataDeployer || c.Name == injector.ContainerDataDeployerInit {
			return &p.Spec.InitContainers[i]
		}
	}
	return nil
}

func isNativeSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func initNames(p *corev1.Pod) []string { return containerNames(p.Spec.InitContainers) }

func containerNames(cs []corev1.Container) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}

// checkReadOnlyDataMount checks the app container's spec: the shared data
// volume at /data, read-only.
func checkReadOnlyDataMount(t *testing.T, p *corev1.Pod) {
	t.Helper()
	for _, c := range p.Spec.Containers {
		if c.Name != "app" {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == injector.VolumeData {
				if m.MountPath != "/data" || !m.ReadOnly {
					t.Errorf("app mounts %s at %s read-only=%v, want /data read-only", m.Name, m.MountPath, m.ReadOnly)
				}
				return
			}
		}
		t.Errorf("app container does not mount %s: %+v", injector.VolumeData, c.VolumeMounts)
		return
	}
	t.Errorf("pod %s has no app container", p.Name)
}

// waitReadyExplainingData waits for the pod of selector to be Ready; while
// it is not, the error says where the data deployment stands, so a timeout
// names the missing piece.
func waitReadyExplainingData(t *testing.T, ns, selector, deployment string) *corev1.Pod {
	t.Helper()
	var ready *corev1.Pod
	err := poll(t.Context(), 4*time.Minute, time.Second, func(ctx context.Context) error {
		list, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(list.Items) == 1 && podReady(&list.Items[0]) {
			ready = &list.Items[0]
			return nil
		}
		return explainDataWait(ctx, ns, selector, deployment)
	})
	if err != nil {
		t.Fatalf("pod %s in %s never became Ready: %v", selector, ns, err)
	}
	return ready
}

// explainDataWait describes why the pods of selector are still waiting for
// data deployment NAME: no version requested, the datadeployer failing, or
// the app not started yet.
func explainDataWait(ctx context.Context, ns, selector, name string) error {
	list, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err
	}
	if len(list.Items) == 0 {
		return fmt.Errorf("no pod matches %s", selector)
	}
	p := &list.Items[0]
	req, hasReq := p.Annotations[spec.PrefixDataRequest+name]
	status := p.Annotations[spec.PrefixDataStatus+name]
	switch {
	case !hasReq && time.Since(p.CreationTimestamp.Time) > requestGrace:
		// The injector writes it at admission once the source has a good
		// version, and the rollout controller soon after; waiting longer
		// cannot help.
		return fmt.Errorf("%w: pod %s has no %s%s annotation %s after its creation: nothing gave it a data version to hold "+
			"(the injector at admission or the data rollout controller writes it); %s",
			errStop, p.Name, spec.PrefixDataRequest, name, requestGrace, describePod(p))
	case !hasReq:
		return fmt.Errorf("pod %s has no %s%s annotation yet; %s", p.Name, spec.PrefixDataRequest, name, describePod(p))
	default:
		return fmt.Errorf("pod %s requests %s (status %q); %s", p.Name, req, status, describePod(p))
	}
}

// checkCanaryHeld checks, from the pod's own records, that the pod turned
// Ready no earlier than min-ready-seconds after the canary started. Times
// in the API have one-second resolution, hence the one second of slack;
// there is no upper bound (the kubelet's probe period and a loaded machine
// add delay).
func checkCanaryHeld(t *testing.T, p *corev1.Pod) {
	t.Helper()
	canaryStart, ok := startedAt(containerStatus(p.Status.ContainerStatuses, injector.ContainerWatchdogHealthz))
	if !ok {
		t.Fatalf("%s has no start time: %s", injector.ContainerWatchdogHealthz, describePod(p))
	}
	appStart, _ := startedAt(containerStatus(p.Status.ContainerStatuses, "app"))
	ready := podCondition(p, corev1.PodReady)
	if ready == nil || ready.Status != corev1.ConditionTrue {
		t.Fatalf("pod %s is not Ready", p.Name)
	}
	held := ready.LastTransitionTime.Sub(canaryStart)
	t.Logf("canary started %s, app started %s, pod Ready %s: held unready %s after the canary started (min-ready-seconds %d)",
		canaryStart.Format(time.RFC3339), appStart.Format(time.RFC3339), ready.LastTransitionTime.Format(time.RFC3339), held, minReadySeconds)
	if held < time.Duration(minReadySeconds-1)*time.Second {
		t.Errorf("pod became Ready %s after the canary started, before min-ready-seconds %d", held, minReadySeconds)
	}
}
