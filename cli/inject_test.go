package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	"github.com/google/go-cmp/cmp"
)

// UPDATE_GOLDEN=1 go test ./cli/ rewrites testdata/*.out.yaml from the
// current output; review the diff before committing it.
var updateGolden = os.Getenv("UPDATE_GOLDEN") == "1"

// goldenCases are the golden tests: the files under testdata/ read with -f,
// in order, plus more flags. The expected output is testdata/NAME.out.yaml.
var goldenCases = map[string]struct {
	files []string
	args  []string
}{
	"deployment-with-namespace": {files: []string{"deployment-with-namespace.in.yaml"}},
	"cronjob":                   {files: []string{"cronjob.in.yaml"}},
	"statefulset-healthz":       {files: []string{"statefulset-healthz.in.yaml"}},
	"pod-unknown-fields":        {files: []string{"pod-unknown-fields.in.yaml"}},
	"passthrough":               {files: []string{"passthrough.in.yaml"}},
	"list":                      {files: []string{"list.in.yaml"}},
	"sidecar-mode-native":       {files: []string{"sidecar-mode.in.yaml"}},
	"sidecar-mode-classic":      {files: []string{"sidecar-mode.in.yaml"}, args: []string{"--sidecar-mode", "classic"}},
	"namespace-file":            {files: []string{"namespace-file.in.yaml"}, args: []string{"--namespace-file=testdata/namespace-file.ns.yaml"}},
	"json":                      {files: []string{"json.in.json"}},
	"multi-file":                {files: []string{"multi-file-a.in.yaml", "multi-file-b.in.yaml"}},
	"flags": {files: []string{"flags.in.yaml"}, args: []string{
		"-datadeployer-image", "registry.example.com/autocrane:1.2.3",
		"--watchdoghealthz-image=registry.example.com/autocrane-healthz:1.2.3",
		"--datadeployer-port", "9880",
		"--watchdoghealthz-port=9881",
		"--image-pull-policy", "Always",
	}},
}

func inject(t *testing.T, args []string, stdin string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = Inject(t.Context(), args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func goldenArgs(files, args []string) []string {
	var all []string
	for _, f := range files {
		all = append(all, "-f", filepath.Join("testdata", f))
	}
	return append(all, args...)
}

func TestInjectGolden(t *testing.T) {
	for name, tc := range goldenCases {
		t.Run(name, func(t *testing.T) {
			got, stderr, err := inject(t, goldenArgs(tc.files, tc.args), "")
			if err != nil {
				t.Fatalf("Inject: %v\nstderr:\n%s", err, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
			golden := filepath.Join("testdata", name+".out.yaml")
			if updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("output differs from %s (-want +got); UPDATE_GOLDEN=1 rewrites it:\n%s", golden, diff)
			}
		})
	}
}

// TestInjectIdempotent runs inject on its own output, read from stdin: the
// webhook's second pass changes nothing, and neither does the encoding.
func TestInjectIdempotent(t *testing.T) {
	for name, tc := range goldenCases {
		t.Run(name, func(t *testing.T) {
			first, _, err := inject(t, goldenArgs(tc.files, tc.args), "")
			if err != nil {
				t.Fatalf("first pass: %v", err)
			}
			second, _, err := inject(t, append([]string{"-f", "-"}, tc.args...), first)
			if err != nil {
				t.Fatalf("second pass: %v", err)
			}
			if diff := cmp.Diff(first, second); diff != "" {
				t.Errorf("second pass changed the output (-first +second):\n%s", diff)
			}
		})
	}
}

// TestGoldenFilesHaveCases catches a golden file left behind by a renamed
// or removed case.
func TestGoldenFilesHaveCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".out.yaml")
		if _, ok := goldenCases[name]; !ok {
			t.Errorf("%s has no golden case %q", f, name)
		}
	}
}

func TestInjectStdin(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "deployment-with-namespace.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "deployment-with-namespace.out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"-f -":         {"-f", "-"},
		"--filename -": {"--filename", "-"},
		"--filename=-": {"--filename=-"},
	} {
		t.Run(name, func(t *testing.T) {
			got, _, err := inject(t, args, string(in))
			if err != nil {
				t.Fatalf("Inject: %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("stdin output differs from the file's (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInjectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	err := Inject(ctx, []string{"-f", "testdata/flags.in.yaml"}, strings.NewReader(""), &out, io.Discard)
	if !errors.Is(err, context.Canceled) || out.Len() != 0 {
		t.Errorf("Inject = (%q, %v), want no output and context.Canceled", out.String(), err)
	}
}

func TestInjectEmptyInput(t *testing.T) {
	got, stderr, err := inject(t, []string{"-f", "-"}, "---\n# nothing\n---\n")
	if err != nil || got != "" || stderr != "" {
		t.Errorf("Inject = (%q, stderr %q, %v), want no output and no error", got, stderr, err)
	}
}

// TestInjectErrors pins the text users read. On every error stdout stays
// empty, so a pipe into kubectl apply applies nothing.
func TestInjectErrors(t *testing.T) {
	cases := map[string]struct {
		stdin       string
		wantErr     string
		wantInvalid bool // errors.As finds an *injector.InvalidError
	}{
		"invalid annotations of a Deployment name every key, with paths from the object": {
			stdin: `apiVersion: v1
kind: ConfigMap
metadata: {name: fine}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata:
      annotations:
        store.autocrane.io/url: ftp://datarepo
        data.autocrane.io/Models: models
    spec:
      containers: [{name: web, image: web:1}]
`,
			wantErr: `stdin: document 2: Deployment default/web: spec.template.metadata.annotations[data.autocrane.io/Models]: Invalid value: "Models": data deployment or source name must be a DNS-1123 label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')
stdin: document 2: Deployment default/web: spec.template.metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://datarepo": scheme must be http or https; accepted form: http(s)://host[:port][/path]`,
			wantInvalid: true,
		},
		"a Pod's paths need no prefix; a CronJob's go through the job template": {
			stdin: `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: lab, annotations: {healthz.autocrane.io/min-ready-seconds: "soon"}}
spec: {containers: [{name: app, image: app:1}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c, namespace: lab}
spec:
  jobTemplate:
    spec:
      template:
        metadata: {annotations: {healthz.autocrane.io/min-ready-seconds: "5"}}
        spec: {containers: [{name: autocrane-watchdoghealthz, image: app:1}]}
`,
			wantErr: `stdin: document 1: Pod lab/p: metadata.annotations[healthz.autocrane.io/min-ready-seconds]: Invalid value: "soon": must be whole seconds from 0 to 86400
stdin: document 2: CronJob lab/c: spec.jobTemplate.spec.template.spec.containers[0].name: Invalid value: "autocrane-watchdoghealthz": container name "autocrane-watchdoghealthz" is reserved for AutoCrane's injected container; rename it`,
			wantInvalid: true,
		},
		"a bad namespace default keeps the namespace's path": {
			stdin: `apiVersion: v1
kind: Namespace
metadata: {name: shop, annotations: {inject.autocrane.io/sidecar-mode: sidecar}}
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: shop}
  spec:
    template:
      metadata: {annotations: {store.autocrane.io/url: "http://repo", data.autocrane.io/models: models}}
      spec: {containers: [{name: web, image: web:1}]}
`,
			wantErr:     `stdin: document 2: items[0]: Deployment shop/web: namespace[shop].metadata.annotations[inject.autocrane.io/sidecar-mode]: Unsupported value: "sidecar": supported values: "native", "classic"`,
			wantInvalid: true,
		},
		"a number where an annotation's string belongs": {
			stdin: `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  template:
    metadata: {annotations: {healthz.autocrane.io/min-ready-seconds: 30}}
    spec: {containers: [{name: db, image: db:1}]}
`,
			wantErr: `stdin: document 1: StatefulSet default/db: spec.template: decode pod: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string`,
		},
		"invalid YAML names the document, and every bad document is reported": {
			stdin: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [unclosed\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}\n",
			wantErr: `stdin: document 2: invalid YAML: yaml: line 1: did not find expected ',' or ']'
stdin: document 3: invalid YAML: yaml: unmarshal errors:
  line 3: key "name" already set in map`,
		},
		"invalid JSON": {
			stdin:   `{"apiVersion": "v1", "kind": "Pod"} {"apiVersion": `,
			wantErr: `stdin: document 2: invalid JSON: unexpected EOF`,
		},
		"a document that is not an object": {
			stdin:   "- a\n- b\n---\njust text\n",
			wantErr: "stdin: document 1: not a Kubernetes object: expected a mapping with apiVersion and kind\nstdin: document 2: not a Kubernetes object: expected a mapping with apiVersion and kind",
		},
		"an object without kind": {
			stdin:   "apiVersion: v1\nmetadata: {name: x}\n",
			wantErr: "stdin: document 1: not a Kubernetes object: apiVersion and kind must be set",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, err := inject(t, []string{"-f", "-"}, tc.stdin)
			if err == nil {
				t.Fatalf("Inject succeeded, want error; stdout:\n%s", stdout)
			}
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing on error", stdout)
			}
			if stderr != "" {
				t.Errorf("stderr = %q, want nothing: the caller prints the error", stderr)
			}
			if errors.Is(err, ErrUsage) {
				t.Errorf("errors.Is(err, ErrUsage) = true for an error in the input")
			}
			var inv *injector.InvalidError
			if got := errors.As(err, &inv); got != tc.wantInvalid {
				t.Errorf("errors.As(err, *injector.InvalidError) = %v, want %v", got, tc.wantInvalid)
			}
		})
	}
}

func TestInjectUsageErrors(t *testing.T) {
	deploy := filepath.Join("testdata", "sidecar-mode.in.yaml")
	cases := map[string]struct {
		args    []string
		wantErr string
		// wantStderr is the first line of stderr; the manual follows.
		wantStderr string
	}{
		"unknown flag": {
			args:       []string{"-f", deploy, "--sidecar", "native"},
			wantErr:    "flag provided but not defined: -sidecar",
			wantStderr: "flag provided but not defined: -sidecar",
		},
		"no -f": {
			args:       []string{"--sidecar-mode", "classic"},
			wantErr:    "-f/--filename is required (use -f - for stdin)",
			wantStderr: "-f/--filename is required (use -f - for stdin)",
		},
		"positional file": {
			args:       []string{deploy},
			wantErr:    `unexpected argument "testdata/sidecar-mode.in.yaml": name input files with -f`,
			wantStderr: `unexpected argument "testdata/sidecar-mode.in.yaml": name input files with -f`,
		},
		"bad sidecar mode": {
			args:       []string{"-f", deploy, "--sidecar-mode", "sidecar"},
			wantErr:    `invalid value "sidecar" for flag -sidecar-mode: must be native or classic`,
			wantStderr: `invalid value "sidecar" for flag -sidecar-mode: must be native or classic`,
		},
		"bad pull policy": {
			args:       []string{"-f", deploy, "--image-pull-policy=always"},
			wantErr:    `invalid value "always" for flag -image-pull-policy: must be Always, IfNotPresent or Never`,
			wantStderr: `invalid value "always" for flag -image-pull-policy: must be Always, IfNotPresent or Never`,
		},
		"bad port": {
			args:       []string{"-f", deploy, "--datadeployer-port=0"},
			wantErr:    `invalid value "0" for flag -datadeployer-port: must be a port number from 1 to 65535`,
			wantStderr: `invalid value "0" for flag -datadeployer-port: must be a port number from 1 to 65535`,
		},
		"same ports": {
			args:       []string{"-f", deploy, "--datadeployer-port=9000", "--watchdoghealthz-port=9000"},
			wantErr:    "invalid flags: the datadeployer and watchdoghealthz ports must differ (both 9000)",
			wantStderr: "invalid flags: the datadeployer and watchdoghealthz ports must differ (both 9000)",
		},
		"empty image": {
			args:       []string{"-f", deploy, "--watchdoghealthz-image="},
			wantErr:    "--watchdoghealthz-image must not be empty",
			wantStderr: "--watchdoghealthz-image must not be empty",
		},
		"stdin twice": {
			args:       []string{"-f", "-", "-f", "-"},
			wantErr:    "-f - (stdin) can be given once",
			wantStderr: "-f - (stdin) can be given once",
		},
		"help": {
			args:       []string{"--help"},
			wantErr:    flag.ErrHelp.Error(),
			wantStderr: "Usage: autocrane inject -f <path|-> [flags]",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, err := inject(t, tc.args, "")
			var uerr *UsageError
			if !errors.As(err, &uerr) {
				t.Fatalf("err = %v, want a *UsageError", err)
			}
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !errors.Is(err, ErrUsage) {
				t.Errorf("errors.Is(err, ErrUsage) = false")
			}
			if errors.Is(err, flag.ErrHelp) != (name == "help") {
				t.Errorf("errors.Is(err, flag.ErrHelp) = %v", errors.Is(err, flag.ErrHelp))
			}
			first, _, _ := strings.Cut(stderr, "\n")
			if first != tc.wantStderr {
				t.Errorf("stderr starts with %q, want %q", first, tc.wantStderr)
			}
			if !strings.HasSuffix(stderr, InjectHelp()) {
				t.Errorf("stderr does not end with the manual:\n%s", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestInjectReadErrors(t *testing.T) {
	cases := map[string]struct {
		args    []string
		wantErr string
	}{
		"missing file": {
			args:    []string{"-f", "testdata/nope.yaml"},
			wantErr: "open testdata/nope.yaml: no such file or directory",
		},
		"namespace file that is not a Namespace": {
			args:    []string{"-f", "testdata/flags.in.yaml", "--namespace-file", "testdata/flags.in.yaml"},
			wantErr: "--namespace-file: testdata/flags.in.yaml: document 1: kind Pod: must be a Namespace (v1)",
		},
		"namespace file with two documents": {
			args:    []string{"-f", "testdata/flags.in.yaml", "--namespace-file", "testdata/multi-file-b.in.yaml"},
			wantErr: "--namespace-file testdata/multi-file-b.in.yaml: must hold one Namespace document, not 2 documents",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			stdout, _, err := inject(t, tc.args, "")
			if err == nil {
				t.Fatal("Inject succeeded, want error")
			}
			if diff := cmp.Diff(tc.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

// TestInjectHelpGolden pins the manual, so a changed flag or default shows
// up in review.
func TestInjectHelpGolden(t *testing.T) {
	golden := filepath.Join("testdata", "inject-help.txt")
	got := InjectHelp()
	if updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("manual differs from %s (-want +got):\n%s", golden, diff)
	}
	for _, l := range strings.Split(got, "\n") {
		if len(l) > 100 {
			t.Errorf("manual line longer than 100 characters: %q", l)
		}
	}
	for _, ns := range spec.SystemNamespaces() {
		if !strings.Contains(got, ns) {
			t.Errorf("manual does not name excluded namespace %s", ns)
		}
	}
	for _, name := range []string{"-f", "--filename", "--image-pull-policy", "--sidecar-mode", "--datadeployer-image", "--watchdoghealthz-image", "--datadeployer-port", "--watchdoghealthz-port", "--namespace-file"} {
		if !slices.ContainsFunc(strings.Split(got, "\n"), func(l string) bool { return strings.Contains(l, "    "+name+" ") || strings.Contains(l, ", "+name+" ") }) {
			t.Errorf("manual does not document %s", name)
		}
	}
}
