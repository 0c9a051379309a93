package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

func messages(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

var comparePaths = cmp.Comparer(func(a, b *field.Path) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
})

func TestParsePod(t *testing.T) {
	ns := Namespace{Name: "team", Annotations: map[string]string{
		KeyStoreURL:      "http://repo.team:8080",
		KeyStoreLocation: "/srv/data",
	}}
	tests := map[string]struct {
		ns      Namespace
		pod     map[string]string
		want    Pod
		wantErr []string
	}{
		"nothing asked": {
			ns:   Namespace{Name: "team"},
			pod:  map[string]string{"unrelated": "x"},
			want: Pod{Store: Store{Location: DefaultLocation}, LocationPath: AnnotationPath(KeyStoreLocation)},
		},
		"namespace defaults apply": {
			ns:  ns,
			pod: map[string]string{PrefixData + "models": "models", PrefixData + "config": "cfg"},
			want: Pod{
				Store:        Store{URL: "http://repo.team:8080", Location: "/srv/data"},
				Deployments:  []DataDeployment{{Name: "config", Source: "cfg"}, {Name: "models", Source: "models"}},
				LocationPath: NamespaceAnnotationPath("team", KeyStoreLocation),
			},
		},
		"token secret from the namespace": {
			ns:  Namespace{Name: "team", Annotations: map[string]string{KeyStoreURL: "http://repo.team:8080", KeyStoreTokenSecret: "repo-token"}},
			pod: map[string]string{PrefixData + "m": "m"},
			want: Pod{
				Store:        Store{URL: "http://repo.team:8080", Location: DefaultLocation, TokenSecret: "repo-token"},
				Deployments:  []DataDeployment{{Name: "m", Source: "m"}},
				LocationPath: AnnotationPath(KeyStoreLocation),
			},
		},
		"bad token secret name": {
			ns:      Namespace{Name: "team"},
			pod:     map[string]string{KeyStoreTokenSecret: "Repo_Token"},
			want:    Pod{Store: Store{Location: DefaultLocation}, LocationPath: AnnotationPath(KeyStoreLocation)},
			wantErr: []string{`metadata.annotations[store.autocrane.io/token-secret]: Invalid value: "Repo_Token": must be a Secret name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		},
		"pod overrides namespace": {
			ns:  ns,
			pod: map[string]string{KeyStoreURL: "https://other", KeyStoreLocation: "/models", PrefixData + "m": "m"},
			want: Pod{
				Store:        Store{URL: "https://other", Location: "/models"},
				Deployments:  []DataDeployment{{Name: "m", Source: "m"}},
				LocationPath: AnnotationPath(KeyStoreLocation),
			},
		},
		"healthz and overrides": {
			ns: Namespace{Name: "team", Annotations: map[string]string{KeySidecarMode: "classic"}},
			pod: map[string]string{
				KeyMinReadySeconds: "30", KeyAlwaysHealthyAfterSeconds: "600",
				PrefixResources + "watchdoghealthz": `{"limits":{"memory":"48Mi"}}`,
			},
			want: Pod{
				Store:         Store{Location: DefaultLocation},
				Healthz:       &Healthz{MinReadySeconds: 30, AlwaysHealthyAfterSeconds: ptr.To[int32](600)},
				SidecarMode:   SidecarClassic,
				Resources:     map[Component]corev1.ResourceRequirements{ComponentWatchdogHealthz: {Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("48Mi")}}},
				ResourcePaths: map[Component]*field.Path{ComponentWatchdogHealthz: AnnotationPath(PrefixResources + "watchdoghealthz")},
				LocationPath:  AnnotationPath(KeyStoreLocation),
			},
		},
		"repository pod declares sources": {
			ns:  Namespace{Name: "team"},
			pod: map[string]string{PrefixData + "models": "git:https://example.invalid/m.git", PrefixData + "cfg": "dir:/srv/cfg"},
			want: Pod{
				Store:        Store{Location: DefaultLocation},
				Sources:      []Source{{Name: "cfg", Kind: SourceDir, Location: "/srv/cfg"}, {Name: "models", Kind: SourceGit, Location: "https://example.invalid/m.git"}},
				LocationPath: AnnotationPath(KeyStoreLocation),
			},
		},
		"every error at once, sorted": {
			ns: Namespace{Name: "team", Annotations: map[string]string{KeyStoreURL: "ftp://x", PrefixResources + "datadeployr": "{}"}},
			pod: map[string]string{
				PrefixData + "Models":            "models",
				PrefixData + "cfg":               "Bad_Name",
				KeyMinReadySeconds:               "soon",
				KeySidecarMode:                   "sidecar",
				KeyStoreLocation:                 "/proc/x",
				PrefixResources + "datadeployer": "nope",
			},
			wantErr: []string{
				`metadata.annotations[data.autocrane.io/Models]: Invalid value: "Models": data deployment or source name must be a DNS-1123 label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`metadata.annotations[data.autocrane.io/cfg]: Invalid value: "Bad_Name": source name must be a DNS-1123 label: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`metadata.annotations[healthz.autocrane.io/min-ready-seconds]: Invalid value: "soon": must be whole seconds from 0 to 86400`,
				`metadata.annotations[inject.autocrane.io/sidecar-mode]: Unsupported value: "sidecar": supported values: "native", "classic"`,
				`metadata.annotations[resources.autocrane.io/datadeployer]: Invalid value: "nope": not valid JSON: invalid character 'o' in literal null (expecting 'u'); accepted form: {"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`,
				`metadata.annotations[store.autocrane.io/location]: Invalid value: "/proc/x": must not be /proc or overlap it`,
				`namespace[team].metadata.annotations[resources.autocrane.io/datadeployr]: Unsupported value: "datadeployr": supported values: "datadeployer", "watchdoghealthz"`,
				`namespace[team].metadata.annotations[store.autocrane.io/url]: Invalid value: "ftp://x": scheme must be http or https; accepted form: http(s)://host[:port][/path]`,
			},
		},
		"deployments need a store url": {
			ns:      Namespace{Name: "team"},
			pod:     map[string]string{PrefixData + "m": "m"},
			wantErr: []string{`metadata.annotations[store.autocrane.io/url]: Required value: data deployments need the data repository's URL: set it on the pod or as a default on its namespace`},
		},
		"sources and deployments on one pod": {
			ns:      ns,
			pod:     map[string]string{PrefixData + "m": "m", PrefixData + "src": "dir:/x"},
			wantErr: []string{`metadata.annotations[data.autocrane.io/*]: Forbidden: a pod either declares sources (KIND:LOCATION, on the data repository's pod) or consumes data deployments (source names), not both`},
		},
		"always-healthy without min-ready": {
			ns:      Namespace{Name: "team"},
			pod:     map[string]string{KeyAlwaysHealthyAfterSeconds: "60"},
			wantErr: []string{`metadata.annotations[healthz.autocrane.io/min-ready-seconds]: Required value: healthz.autocrane.io/always-healthy-after-seconds only applies to the canary sidecar, which healthz.autocrane.io/min-ready-seconds turns on`},
		},
		"always-healthy before min-ready": {
			ns:      Namespace{Name: "team"},
			pod:     map[string]string{KeyMinReadySeconds: "60", KeyAlwaysHealthyAfterSeconds: "30"},
			wantErr: []string{`metadata.annotations[healthz.autocrane.io/always-healthy-after-seconds]: Invalid value: "30": must not be less than healthz.autocrane.io/min-ready-seconds, or the canary would never gate`},
		},
		"namespace data keys are not defaults": {
			ns:   Namespace{Name: "team", Annotations: map[string]string{PrefixData + "m": "m", KeyMinReadySeconds: "5"}},
			pod:  map[string]string{},
			want: Pod{Store: Store{Location: DefaultLocation}, LocationPath: AnnotationPath(KeyStoreLocation)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, errs := ParsePod(tc.ns, tc.pod)
			if diff := cmp.Diff(tc.wantErr, messages(errs)); diff != "" {
				t.Fatalf("errors (-want +got):\n%s", diff)
			}
			if len(tc.wantErr) > 0 {
				return
			}
			if diff := cmp.Diff(tc.want, got, comparePaths); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInjectionScope(t *testing.T) {
	on := map[string]string{LabelInject: InjectEnabled}
	off := map[string]string{LabelInject: InjectDisabled}
	annotated := map[string]string{PrefixData + "m": "m"}
	tests := map[string]struct {
		ns, pod, ann map[string]string
		want         bool
		reason       ScopeReason
		wantErr      string
	}{
		"namespace enabled":                   {ns: on, want: true, reason: ScopeNamespaceEnabled},
		"pod disabled beats namespace":        {ns: on, pod: off, reason: ScopePodDisabled},
		"pod enabled beats namespace":         {ns: off, pod: on, want: true, reason: ScopePodEnabled},
		"namespace disabled beats annotation": {ns: off, ann: annotated, reason: ScopeNamespaceDisabled},
		"annotated in plain namespace":        {ann: annotated, want: true, reason: ScopeAnnotated},
		"state key counts as annotated":       {ann: map[string]string{AnnotationInjected: "{}"}, want: true, reason: ScopeAnnotated},
		"foreign keys only":                   {ann: map[string]string{"example.com/x": "y", "notautocrane.io/x": "y"}, reason: ScopeNotOptedIn},
		"unknown namespace value ignored":     {ns: map[string]string{LabelInject: "yes"}, reason: ScopeNotOptedIn},
		"bad pod label":                       {pod: map[string]string{LabelInject: "true"}, wantErr: `metadata.labels[autocrane.io/inject]: Unsupported value: "true": supported values: "enabled", "disabled"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, reason, err := InjectionScope(tc.ns, tc.pod, tc.ann)
			if errText(err) != tc.wantErr {
				t.Fatalf("error: got %q, want %q", errText(err), tc.wantErr)
			}
			if got != tc.want || reason != tc.reason {
				t.Errorf("got (%v, %q), want (%v, %q)", got, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestIsAutoCraneKey(t *testing.T) {
	for key, want := range map[string]bool{
		"autocrane.io/inject": true, "probe.autocrane.io/web": true, "request.data.autocrane.io/m": true,
		"autocrane.io": false, "xautocrane.io/a": false, "example.com/autocrane.io": false, "io/autocrane": false,
	} {
		if got := IsAutoCraneKey(key); got != want {
			t.Errorf("IsAutoCraneKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestInjectedRecordRoundTrip(t *testing.T) {
	rec := Injected{Version: InjectedVersion, Hash: "sha256:00", InitContainers: []string{"a"}, Volumes: []string{"v"}}
	got, err := ParseInjected(rec.String())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"x", `{"v":2,"hash":"h"}`, `{"v":1,"extra":true}`, `{"v":1}{}`} {
		if _, err := ParseInjected(bad); err == nil {
			t.Errorf("ParseInjected(%q) accepted", bad)
		} else if !strings.HasPrefix(err.Error(), "metadata.annotations[autocrane.io/injected]: Invalid value") {
			t.Errorf("ParseInjected(%q): %v", bad, err)
		}
	}
	if got, err := ParseInjected(""); err != nil || got.Version != 0 {
		t.Errorf("empty: %+v %v", got, err)
	}
}

func TestKnownKeysAreInTheDomain(t *testing.T) {
	for _, k := range KnownKeys {
		key := k.Key
		if k.Prefix {
			key += "x"
		}
		if !IsAutoCraneKey(key) {
			t.Errorf("%s is not in AutoCrane's domain", k.Key)
		}
		if k.Form == "" || k.Doc == "" {
			t.Errorf("%s lacks Form or Doc", k.Key)
		}
	}
}

func TestIsStateKey(t *testing.T) {
	for key, want := range map[string]bool{
		AnnotationInjected: true, PrefixWatchdogStatus + "web": true, PrefixDataRequest + "m": true, PrefixDataStatus + "m": true,
		PrefixProbe + "web": false, KeyStoreURL: false, PrefixData + "m": false, "status.example.com/x": false,
	} {
		if got := IsStateKey(key); got != want {
			t.Errorf("IsStateKey(%q) = %v, want %v", key, got, want)
		}
	}
}
