//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemoOnTheCluster runs `make demo`'s program on this cluster, as
// make demo does on a machine that allows a real cluster, and checks the
// story it tells. The demo checks each outcome itself (it fails when the
// app starts before the datadeployer, the canary lets a pod turn Ready too
// early, an app reads the wrong data, or v3 is not marked bad); this test
// checks that it ran to the end and said so.
func TestDemoOnTheCluster(t *testing.T) {
	if env.kubeconfig != filepath.Join(env.clusterDir, "kubeconfig") {
		t.Skipf("the demo runs on hack/cluster's cluster only; %s=%s is another", envKubeconfig, env.kubeconfig)
	}
	cmd := exec.CommandContext(t.Context(), "go", "run", "./hack/demo", "--cluster=yes", "--exit", "--images=false")
	cmd.Dir = env.repo
	cmd.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+filepath.Dir(env.kubectlBin), envClusterDir+"="+env.clusterDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	t.Logf("demo output:\n%s", text)
	if err != nil {
		t.Fatalf("the demo failed: %v", err)
	}
	for _, want := range []string{
		"A cluster started by hack/cluster-up already runs",
		"AutoCrane is installed on this cluster already",
		"the injected datadeployer started first",
		"held unready",
		`/files/models/version.txt (the app's view of /data/models/version.txt): "v1\n"`,
		`scheme must be http or https`,
		"from autocrane-eviction: evicted through the Eviction API",
		"Event DataPromoted on Deployment web: version v2 of source models is the last known good version",
		"Event DataRolledBack on Deployment web",
		"(v3): pod web-",
		"Removing the demo's namespaces",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	// One eviction of the failing canary pod, one Event on it.
	m := regexp.MustCompile(`Making pod (\S+) fail`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("the demo's output names no failing canary pod")
	}
	if n := strings.Count(text, "Event Evicted on Pod "+m[1]+","); n != 1 {
		t.Errorf("%d Evicted Events on pod %s, want 1", n, m[1])
	}
}
