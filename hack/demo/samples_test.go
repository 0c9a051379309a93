package main

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestMovePort(t *testing.T) {
	for _, tc := range []struct {
		name    string
		probe   string
		ports   string
		want    []string // in the result's YAML
		wantErr string
	}{
		{
			name:  "the sample's port moves in the probe and the container",
			probe: "POD_IP:8080/watchdog",
			ports: "[{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]",
			want:  []string{"probe.autocrane.io/alive: POD_IP:41234/watchdog", "containerPort: 41234", "containerPort: 9090"},
		},
		{
			name:  "a container without ports stays without",
			probe: "POD_IP:8080/watchdog",
			ports: "",
			want:  []string{"probe.autocrane.io/alive: POD_IP:41234/watchdog"},
		},
		{name: "another port", probe: "POD_IP:9000/watchdog", wantErr: `= "POD_IP:9000/watchdog", want POD_IP:8080/`},
		{name: "no probe", probe: "", wantErr: `= "", want POD_IP:8080/`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := ""
			if tc.probe != "" {
				probe = "probe.autocrane.io/alive: " + tc.probe
			}
			doc := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: canary}
spec:
  template:
    metadata:
      annotations: {` + probe + `}
    spec:
      containers:
      - name: app
`
			if tc.ports != "" {
				doc += "        ports: " + tc.ports + "\n"
			}
			// As renderSamples reads kubectl's output: YAML to JSON, then
			// Unstructured's JSON decoder (int64 numbers).
			raw, err := yaml.YAMLToJSON([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			var obj unstructured.Unstructured
			if err := obj.UnmarshalJSON(raw); err != nil {
				t.Fatal(err)
			}
			err = movePort(&obj, 41234)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("movePort = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("movePort: %v", err)
			}
			out, err := yaml.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("result lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(string(out), "8080") || (tc.ports == "" && strings.Contains(string(out), "ports")) {
				t.Errorf("result still has 8080, or gained ports:\n%s", out)
			}
		})
	}
}
