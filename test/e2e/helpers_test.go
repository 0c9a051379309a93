//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// uniqueName appends a random suffix, so runs against a reused cluster
// never meet a namespace of an earlier run that is still terminating.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newNamespace creates a namespace for one test, labelled for injection
// when injected, and deletes it afterwards; a failed test first prints the
// namespace's pods and events.
func newNamespace(t *testing.T, prefix string, injected bool) string {
	t.Helper()
	name := uniqueName(prefix)
	if err := env.createNamespace(t.Context(), name, injected); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			env.dumpDiagnostics(ctx, name)
		}
		_ = env.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// apply runs kubectl apply with a manifest.
func apply(t *testing.T, manifest string) {
	t.Helper()
	if out, err := env.kubectl(t.Context(), manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// restricted is the container securityContext of the restricted Pod
// Security profile, as one YAML line.
const restricted = `securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false, ` +
	`readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}`

// deployRepository runs a datarepository in ns that serves the source
// "src": a directory that fsprobe seeds with hello.txt and sub/data.json.
// It returns the store URL pods use.
func deployRepository(t *testing.T, ns string) string {
	t.Helper()
	apply(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: datarepository, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: datarepository}}
  template:
    metadata:
      labels: {app: datarepository, autocrane.io/role: datarepository}
      annotations: {data.autocrane.io/src: "dir:/srv/src"}
    spec:
      initContainers:
      - name: seed
        image: %[2]s
        imagePullPolicy: Never
        command: [/usr/local/bin/fsprobe, seed, /srv/src]
        %[3]s
        volumeMounts: [{name: src, mountPath: /srv/src}]
      containers:
      - name: repository
        image: %[2]s
        imagePullPolicy: Never
        command: [/usr/local/bin/datarepository]
        args: [--annotations-file=/podinfo/annotations, --root=/var/lib/repository, --listen=:9790]
        ports: [{containerPort: 9790}]
        readinessProbe:
          httpGet: {path: /readyz, port: 9790}
          periodSeconds: 1
        %[3]s
        volumeMounts:
        - {name: src, mountPath: /srv/src, readOnly: true}
        - {name: root, mountPath: /var/lib/repository}
        - {name: podinfo, mountPath: /podinfo, readOnly: true}
      volumes:
      - {name: src, emptyDir: {}}
      - {name: root, emptyDir: {}}
      - name: podinfo
        downwardAPI:
          items: [{path: annotations, fieldRef: {fieldPath: metadata.annotations}}]
---
apiVersion: v1
kind: Service
metadata: {name: datarepository, namespace: %[1]s}
spec:
  selector: {app: datarepository}
  ports: [{port: 9790, targetPort: 9790}]
`, ns, testImage, restricted))
	waitPods(t, ns, "app=datarepository", 3*time.Minute, "Ready", func(p *corev1.Pod) bool { return podReady(p) })
	return fmt.Sprintf("http://datarepository.%s.svc:9790", ns)
}

// waitPods waits until some pod matches selector and every matching pod
// passes done, and returns them.
func waitPods(t *testing.T, ns, selector string, timeout time.Duration, what string, done func(*corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := poll(t.Context(), timeout, 500*time.Millisecond, func(ctx context.Context) error {
		list, err := env.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return fmt.Errorf("no pod matches %s", selector)
		}
		for i := range list.Items {
			if !done(&list.Items[i]) {
				return fmt.Errorf("pod %s is not %s: %s", list.Items[i].Name, what, describePod(&list.Items[i]))
			}
		}
		pods = list.Items
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for the pods %s in %s to be %s: %v", selector, ns, what, err)
	}
	return pods
}

func podReady(p *corev1.Pod) bool {
	c := podCondition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func containerStatus(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i]
		}
	}
	return nil
}

// describePod is one line per container: its state and the reason.
func describePod(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", p.Status.Phase)
	all := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range all {
		fmt.Fprintf(&b, "; %s ready=%v", s.Name, s.Ready)
		switch {
		case s.State.Running != nil:
			b.WriteString(" running")
		case s.State.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s %s", s.State.Waiting.Reason, s.State.Waiting.Message)
		case s.State.Terminated != nil:
			fmt.Fprintf(&b, " terminated %s exit %d %s", s.State.Terminated.Reason, s.State.Terminated.ExitCode, s.State.Terminated.Message)
		}
	}
	return b.String()
}

// startedAt is when a container (last) started running.
func startedAt(s *corev1.ContainerStatus) (time.Time, bool) {
	switch {
	case s == nil:
		return time.Time{}, false
	case s.State.Running != nil:
		return s.State.Running.StartedAt.Time, true
	case s.State.Terminated != nil:
		return s.State.Terminated.StartedAt.Time, true
	}
	return time.Time{}, false
}
