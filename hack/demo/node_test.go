package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/autocrane/autocrane/spec"
)

// TestEditWeb: the demo's additions to config/samples' web Deployment are
// keys AutoCrane accepts, and only that Deployment changes.
func TestEditWeb(t *testing.T) {
	raw, err := os.ReadFile("../../config/samples/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var web unstructured.Unstructured
	if err := web.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	other := web.DeepCopy()
	other.SetName("canary")
	if err := editWeb(other); err != nil {
		t.Fatal(err)
	}
	if annotations, _, _ := unstructured.NestedStringMap(other.Object, "spec", "template", "metadata", "annotations"); annotations[spec.KeyRolloutBakeSeconds] != "" {
		t.Errorf("editWeb changed a Deployment other than web: %v", annotations)
	}

	if err := editWeb(&web); err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(web.Object, &d); err != nil {
		t.Fatal(err)
	}
	annotations := d.Spec.Template.Annotations
	for k, v := range webAnnotations() {
		if annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, annotations[k], v)
		}
	}
	if _, errs := spec.ParseWatchdog(annotations); len(errs) > 0 {
		t.Errorf("watchdog keys refused: %v", errs.ToAggregate())
	}
	if r, errs := spec.ParseRollout(annotations); len(errs) > 0 || r.Bake != webBakeSeconds*time.Second {
		t.Errorf("rollout keys: %+v, %v", r, errs.ToAggregate())
	}
	if _, errs := spec.ParseProbes(annotations); len(errs) > 0 {
		t.Errorf("probe refused: %v", errs.ToAggregate())
	}
	if args := d.Spec.Template.Spec.Containers[0].Args; len(args) != 1 || args[0] != "--serve-files="+webDataDir {
		t.Errorf("app args %q, want --serve-files=%s", args, webDataDir)
	}
	if got := annotations[spec.KeyStoreLocation]; got != webDataDir {
		t.Errorf("config/samples' %s is %q, the demo reads the data at %s", spec.KeyStoreLocation, got, webDataDir)
	}
}

// TestRepositoryManifest: the repository's Deployment declares the source
// as the data repository reads it, and its Service serves the samples'
// store URL.
func TestRepositoryManifest(t *testing.T) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(repositoryManifest("http://10.213.0.1:4242/version.txt")), 4096)
	var d appsv1.Deployment
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	if err := dec.Decode(&svc); err != nil {
		t.Fatal(err)
	}
	src, ferr := spec.ParseSource(dataSource, d.Spec.Template.Annotations[spec.PrefixData+dataSource], nil)
	if ferr != nil {
		t.Fatalf("source refused: %v", ferr)
	}
	if src.Kind != spec.SourceHTTP || src.Location != "http://10.213.0.1:4242/version.txt" {
		t.Errorf("source %+v", src)
	}
	if d.Spec.Template.Labels["autocrane.io/role"] != "datarepository" {
		t.Errorf("the repository pod lacks the role label: %v", d.Spec.Template.Labels)
	}
	raw, err := os.ReadFile("../../config/samples/namespace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ns corev1.Namespace
	if err := yaml.Unmarshal(raw, &ns); err != nil {
		t.Fatal(err)
	}
	want := "http://" + svc.Name + "." + svc.Namespace + ".svc:" + strconv.Itoa(int(svc.Spec.Ports[0].Port))
	if got := ns.Annotations[spec.KeyStoreURL]; got != want {
		t.Errorf("config/samples' store URL is %q, the demo's repository serves %q", got, want)
	}
}

// TestHTTPSource: each set is a change the repository's conditional GET
// sees, also two in the same second; the directory goes with stop.
func TestHTTPSource(t *testing.T) {
	s, err := startHTTPSource("127.0.0.1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	body, etag := get(t, s.url, "")
	if body != "v1\n" {
		t.Fatalf("GET = %q, want v1", body)
	}
	must(t, s.set("v2"))
	must(t, s.set("v3"))
	body, etag3 := get(t, s.url, etag)
	if body != "v3\n" {
		t.Fatalf("GET If-None-Match %s = %q, want v3", etag, body)
	}
	if body, _ := get(t, s.url, etag3); body != "" {
		t.Errorf("GET If-None-Match the last ETag = %q, want 304 Not Modified", body)
	}
	must(t, s.stop())
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("the source's directory is still there after stop: %v", err)
	}
}

// get returns the body (empty for 304) and the ETag.
func get(t *testing.T, url, etag string) (string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b), resp.Header.Get("ETag")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogName(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"go", []string{"run", "./hack/imagebuild"}, "imagebuild.log"},
		{"go", []string{"run", "./hack/cluster", "load"}, "cluster-load.log"},
		{"hack/cluster-up", nil, "cluster-up.log"},
		{"hack/cluster-down", nil, "cluster-down.log"},
	} {
		if got := logName(tc.name, tc.args); got != tc.want {
			t.Errorf("logName(%q, %q) = %q, want %q", tc.name, tc.args, got, tc.want)
		}
	}
}

// TestNodeAllowedSaysWhyNot: where a real cluster cannot start, the demo
// learns why, to print it before it falls back to the control plane.
func TestNodeAllowedSaysWhyNot(t *testing.T) {
	dir := t.TempDir()
	// The remains of a cluster: hack/cluster check refuses to start
	// another, and no API server answers.
	if err := os.WriteFile(filepath.Join(dir, journalFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envClusterDir, dir)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ok, why := nodeAllowed(t.Context(), root)
	if ok {
		t.Fatal("nodeAllowed = true with a dead cluster recorded")
	}
	want := "hack/cluster check: " // as root
	if os.Geteuid() != 0 {
		want = "not running as root"
	}
	if !strings.Contains(why, want) || (os.Geteuid() == 0 && !strings.Contains(why, "is recorded in "+dir)) {
		t.Errorf("why = %q, want it to contain %q and name %s", why, want, dir)
	}
}
