package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/test/envtest/framework"
)

// controlPlane is the bare control plane as the stories' cluster.
type controlPlane struct{ *framework.Env }

func (c controlPlane) apiClient() client.Client { return c.Client }

// fakeHost is the demo's fake kubelet as the watchdog story's podHost: it
// runs each pod's app as a local process.
type fakeHost struct{ kubelet *fakeKubelet }

func (h fakeHost) start(ctx context.Context, step *stepper, pods []corev1.Pod, port int) error {
	step.say("no kubelet here: the demo runs each pod's container as a local process at 127.0.x.y and reports it Running")
	for i := range pods {
		c, err := h.kubelet.run(ctx, &pods[i], port)
		if err != nil {
			return err
		}
		step.done("pod %s: testworkload at %s, reported Running and Ready (its injected sidecar is not run)", pods[i].Name, c.url)
	}
	return nil
}

func (h fakeHost) added(ctx context.Context, p *corev1.Pod, port int) (string, error) {
	c, err := h.kubelet.run(ctx, p, port)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("testworkload at %s, reported Running and Ready", c.url), nil
}

func (h fakeHost) removed(name string) (string, error) {
	return "the demo stops its process, as its kubelet would", h.kubelet.stop(name)
}

func (h fakeHost) post(ctx context.Context, p *corev1.Pod, _ int, path string) (string, error) {
	return h.kubelet.url(p.Name) + path, h.kubelet.post(ctx, p.Name, path)
}
