package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/autocrane/autocrane/spec"
)

// samplePort is the port config/samples/watchdog.yaml's canary listens on
// and declares in its probe annotation.
const samplePort = 8080

// The demo's copy of the watchdog sample (hack/demo/overlay).
const (
	overlayDir        = "hack/demo/overlay"
	watchdogNamespace = "autocrane-watchdog-demo"
	watchdogApp       = "canary"
	watchdogName      = "alive"
)

// freePort is a TCP port free on 127.0.0.1 now. The demo's pods use it on
// their own loopback addresses: a fixed, well-known port such as 8080 may be
// held on every address by something else on this machine.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// renderSamples builds hack/demo/overlay (config/samples with the canary's
// demo tuning and budget) with the cluster's kubectl, and moves the
// canary's port from 8080 to port: in its probe annotation and its
// containerPort. edit, when not nil, may change each object further. It
// returns YAML for `kubectl apply -f -`.
func renderSamples(ctx context.Context, k cluster, root string, port int, edit func(*unstructured.Unstructured) error) (string, error) {
	stdout, stderr, err := k.Kubectl(ctx, nil, "kustomize", filepath.Join(root, overlayDir))
	if err != nil {
		return "", fmt.Errorf("kubectl kustomize %s: %w\n%s", overlayDir, err, stderr)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(stdout), 4096)
	var docs []string
	moved := false
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("read the output of kubectl kustomize %s: %w", overlayDir, err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var obj unstructured.Unstructured
		if err := obj.UnmarshalJSON(raw); err != nil {
			return "", fmt.Errorf("read the output of kubectl kustomize %s: %w", overlayDir, err)
		}
		if obj.GetKind() == "Deployment" && obj.GetNamespace() == watchdogNamespace && obj.GetName() == watchdogApp {
			if err := movePort(&obj, port); err != nil {
				return "", fmt.Errorf("deployment %s/%s: %w", watchdogNamespace, watchdogApp, err)
			}
			moved = true
		}
		if edit != nil {
			if err := edit(&obj); err != nil {
				return "", fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
			}
		}
		doc, err := yaml.Marshal(obj.Object)
		if err != nil {
			return "", fmt.Errorf("write %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
		docs = append(docs, string(doc))
	}
	if !moved {
		return "", fmt.Errorf("%s has no Deployment %s/%s", overlayDir, watchdogNamespace, watchdogApp)
	}
	return strings.Join(docs, "---\n"), nil
}

// movePort rewrites the pod template's probe annotation and container ports
// from samplePort to port.
func movePort(deploy *unstructured.Unstructured, port int) error {
	probeKey := spec.PrefixProbe + watchdogName
	annotations, _, err := unstructured.NestedStringMap(deploy.Object, "spec", "template", "metadata", "annotations")
	if err != nil {
		return fmt.Errorf("read the pod template's annotations: %w", err)
	}
	want := "POD_IP:" + strconv.Itoa(samplePort) + "/"
	probe, ok := annotations[probeKey]
	if !ok || !strings.HasPrefix(probe, want) {
		return fmt.Errorf("annotation %s = %q, want %s...", probeKey, probe, want)
	}
	annotations[probeKey] = "POD_IP:" + strconv.Itoa(port) + "/" + strings.TrimPrefix(probe, want)
	if err := unstructured.SetNestedStringMap(deploy.Object, annotations, "spec", "template", "metadata", "annotations"); err != nil {
		return fmt.Errorf("write the pod template's annotations: %w", err)
	}
	containers, _, err := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return fmt.Errorf("read the containers: %w", err)
	}
	for _, c := range containers {
		container, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("a container is a %T, not an object", c)
		}
		ports, _, _ := unstructured.NestedSlice(container, "ports")
		for _, p := range ports {
			if p, ok := p.(map[string]any); ok && isNumber(p["containerPort"], samplePort) {
				p["containerPort"] = int64(port)
			}
		}
		if len(ports) > 0 {
			container["ports"] = ports
		}
	}
	return unstructured.SetNestedSlice(deploy.Object, containers, "spec", "template", "spec", "containers")
}

// isNumber reports whether v, a number decoded from JSON or YAML (int64 or
// float64, depending on the decoder), is n.
func isNumber(v any, n int) bool {
	switch v := v.(type) {
	case int64:
		return v == int64(n)
	case float64:
		return v == float64(n)
	case int:
		return v == n
	}
	return false
}
