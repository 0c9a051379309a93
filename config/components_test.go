package config

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// TestOptionalComponents renders an overlay of the kind docs/install.md
// describes: config/default (or selfmanaged) with the Prometheus and
// NetworkPolicy components and the API server's CIDR patched in.
func TestOptionalComponents(t *testing.T) {
	kubectl := kubectlPath(t)
	for _, base := range []string{"default", "selfmanaged"} {
		t.Run(base, func(t *testing.T) {
			dir := tempOverlay(t, `resources:
  - %[1]s/`+base+`
components:
  - %[1]s/prometheus
  - %[1]s/networkpolicy
patches:
  - target: {kind: NetworkPolicy, name: autocrane-manager}
    patch: |-
      - op: replace
        path: /spec/ingress/0/from/0/ipBlock/cidr
        value: 10.1.2.0/24
`)
			m := render(t, kubectl, dir)
			checkManager(t, m)
			checkServiceMonitor(t, m)
			checkNetworkPolicy(t, m)
			checkAlerts(t, m)
		})
	}
}

// checkServiceMonitor: it selects the metrics Service, whose port reaches
// the manager's metrics port.
func checkServiceMonitor(t *testing.T, m *manifest) {
	t.Helper()
	sm := m.find(t, "ServiceMonitor", "autocrane-manager")
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, want one", endpoints)
	}
	port, _, _ := unstructured.NestedString(endpoints[0].(map[string]any), "port")
	var selected []string
	for _, o := range m.all("Service") {
		if !labels.SelectorFromSet(sel).Matches(labels.Set(o.GetLabels())) {
			continue
		}
		selected = append(selected, o.GetName())
		svc := &corev1.Service{}
		decode(t, o, svc)
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != port || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
			t.Errorf("Service %s ports %+v: want one port %q to the container's metrics port", o.GetName(), svc.Spec.Ports, port)
		}
	}
	if !slices.Equal(selected, []string{"autocrane-manager-metrics"}) {
		t.Errorf("ServiceMonitor selects Services %q, want only autocrane-manager-metrics", selected)
	}
}

// checkNetworkPolicy: it isolates the manager's pods, admits the webhook
// port from the patched CIDR only, and names ports the container has.
func checkNetworkPolicy(t *testing.T, m *manifest) {
	t.Helper()
	d := m.deployment(t)
	c := managerContainer(t, d)
	np := m.find(t, "NetworkPolicy", "autocrane-manager")
	sel, _, _ := unstructured.NestedStringMap(np.Object, "spec", "podSelector", "matchLabels")
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("NetworkPolicy selects %v, not the manager's pods", sel)
	}
	rules, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	var webhookFrom []string
	for _, r := range rules {
		ports, _, _ := unstructured.NestedSlice(r.(map[string]any), "ports")
		from, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
		if len(from) == 0 {
			t.Errorf("ingress rule %v admits every source", r)
		}
		for _, p := range ports {
			name := fmt.Sprint(p.(map[string]any)["port"])
			containerPort(t, c, name)
			if name != "webhook-server" {
				continue
			}
			for _, f := range from {
				cidr, _, _ := unstructured.NestedString(f.(map[string]any), "ipBlock", "cidr")
				webhookFrom = append(webhookFrom, cidr)
			}
		}
	}
	if !slices.Equal(webhookFrom, []string{"10.1.2.0/24"}) {
		t.Errorf("the webhook port admits %q, want only the patched CIDR", webhookFrom)
	}
}

// metricName matches the metric names an alert expression uses.
var metricName = regexp.MustCompile(`\b(?:autocrane|certmanager|apiserver)_[a-z0-9_]+`)

// upJob matches the scrape health the alerts read, capturing the job.
var upJob = regexp.MustCompile(`\bup\{job="([^"]+)"`)

// checkAlerts: each alert is labelled and described, and every metric the
// alerts read is listed in docs/install.md; AutoCrane's own must be
// exported by the code (a metric name in quotes in a non-test Go file).
func checkAlerts(t *testing.T, m *manifest) {
	t.Helper()
	docs, err := os.ReadFile(filepath.Join("..", "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	code := goSources(t)
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert       string            `json:"alert"`
					Expr        string            `json:"expr"`
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	decode(t, m.find(t, "PrometheusRule", "autocrane"), &rule)
	alerts := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %q: want a name, a severity, a summary and a description", r.Alert)
			}
			names := metricName.FindAllString(r.Expr, -1)
			jobs := upJob.FindAllStringSubmatch(r.Expr, -1)
			if len(names) == 0 && len(jobs) == 0 {
				t.Errorf("alert %s reads no AutoCrane, cert-manager or API server metric, nor up", r.Alert)
			}
			// The ServiceMonitor's job label is the metrics Service's name.
			for _, j := range jobs {
				if j[1] != "autocrane-manager-metrics" {
					t.Errorf("alert %s reads up of job %q, want autocrane-manager-metrics", r.Alert, j[1])
				}
			}
			for _, n := range names {
				n = strings.TrimSuffix(n, "_bucket")
				if !bytes.Contains(docs, []byte("`"+n+"`")) {
					t.Errorf("alert %s reads %s, which docs/install.md does not list", r.Alert, n)
				}
				if strings.HasPrefix(n, "autocrane_") && !bytes.Contains(code, []byte(`"`+n+`"`)) {
					t.Errorf("alert %s reads %s, which no Go code exports", r.Alert, n)
				}
			}
		}
	}
	if alerts < 10 {
		t.Errorf("%d alerts, want the set docs/install.md lists", alerts)
	}
}

// goSources is the text of the repository's non-test Go files.
func goSources(t *testing.T) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != ".." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}
