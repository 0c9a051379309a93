package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/controller"
)

// nodeHost is a real node as the stories' podHost: its kubelet runs the
// pods; the demo only reaches their apps, from the host, over the bridge.
type nodeHost struct {
	client client.Client
	http   *http.Client
}

func newNodeHost(c client.Client) nodeHost {
	return nodeHost{client: c, http: &http.Client{Timeout: 5 * time.Second}}
}

func (h nodeHost) start(ctx context.Context, step *stepper, pods []corev1.Pod, _ int) error {
	step.say("The node's kubelet runs them (containerd, an IP on the bridge): waiting for each to be Running")
	for i := range pods {
		p, err := h.waitRunning(ctx, pods[i].Namespace, pods[i].Name)
		if err != nil {
			return err
		}
		step.done("pod %s: %s", p.Name, describeRunning(p))
	}
	return nil
}

func (h nodeHost) added(context.Context, *corev1.Pod, int) (string, error) { return "", nil }

func (h nodeHost) removed(string) (string, error) { return "", nil }

func (h nodeHost) post(ctx context.Context, p *corev1.Pod, port int, path string) (string, error) {
	var now corev1.Pod
	if err := h.client.Get(ctx, client.ObjectKeyFromObject(p), &now); err != nil {
		return "", err
	}
	if now.Status.PodIP == "" {
		return "", fmt.Errorf("pod %s has no IP", p.Name)
	}
	url := "http://" + net.JoinHostPort(now.Status.PodIP, strconv.Itoa(port)) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return url, nil
}

// get fetches url from the host and returns the body.
func (h nodeHost) get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// waitRunning waits until the pod runs with an IP, and stops at once when
// one of its containers cannot start (a missing image, say).
func (h nodeHost) waitRunning(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	var p corev1.Pod
	err := poll(ctx, runningTimeout, func() (bool, error) {
		if err := h.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return false, err
		}
		if err := stuck(&p); err != nil {
			return false, err
		}
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for pod %s/%s to run: %w", ns, name, err)
	}
	return &p, nil
}

// stuck is an error when a container of p waits for a reason that will
// not pass by itself.
func stuck(p *corev1.Pod) error {
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := st.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError":
				return fmt.Errorf("pod %s: container %s: %s: %s", p.Name, st.Name, w.Reason, w.Message)
			}
		}
	}
	return nil
}

// describeRunning says where a pod runs and which containers run in it.
func describeRunning(p *corev1.Pod) string {
	var running []string
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if st.State.Running != nil {
			running = append(running, st.Name)
		}
	}
	ready := "not Ready yet"
	if controller.PodReady(p) {
		ready = "Ready"
	}
	return fmt.Sprintf("Running on node %s at %s, %s; containers running: %s", p.Spec.NodeName, p.Status.PodIP, ready, strings.Join(running, ", "))
}
