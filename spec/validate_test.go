package spec

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidatePod(t *testing.T) {
	ns := Namespace{Name: "team", Annotations: map[string]string{KeyStoreURL: "http://repo:8080"}}
	app := func(mounts ...corev1.VolumeMount) *corev1.PodSpec {
		return &corev1.PodSpec{Containers: []corev1.Container{{Name: "app", VolumeMounts: mounts}}}
	}
	tests := map[string]struct {
		pod          PodFields
		wantErr      []string
		wantWarnings []string
	}{
		"valid app pod": {
			pod: PodFields{Annotations: map[string]string{PrefixData + "m": "m", PrefixProbe + "web": "POD_IP:8080/watchdog"}, Spec: app()},
		},
		"valid repository pod": {
			pod: PodFields{Labels: map[string]string{LabelRole: RoleDataRepository},
				Annotations: map[string]string{PrefixData + "m": "git:https://example.invalid/m.git"}, Spec: app()},
		},
		"source on an app pod": {
			pod:     PodFields{Annotations: map[string]string{PrefixData + "m": "dir:/srv/m"}, Spec: app()},
			wantErr: []string{`metadata.annotations[data.autocrane.io/m]: Forbidden: a source declaration (KIND:LOCATION) is only valid on the data repository's pods (label autocrane.io/role=datarepository); on an app pod, name a source instead`},
		},
		"deployment on a repository pod": {
			pod:     PodFields{Labels: map[string]string{LabelRole: RoleDataRepository}, Annotations: map[string]string{PrefixData + "m": "m"}, Spec: app()},
			wantErr: []string{`metadata.annotations[data.autocrane.io/m]: Forbidden: the data repository's pods declare sources (KIND:LOCATION), not data deployments`},
		},
		"bad role": {
			pod:     PodFields{Labels: map[string]string{LabelRole: "repo"}, Spec: app()},
			wantErr: []string{`metadata.labels[autocrane.io/role]: Unsupported value: "repo": supported values: "datarepository"`},
		},
		"probe on host network": {
			pod:     PodFields{Annotations: map[string]string{PrefixProbe + "web": "POD_IP:80/w"}, Spec: &corev1.PodSpec{HostNetwork: true, Containers: []corev1.Container{{Name: "app"}}}},
			wantErr: []string{`metadata.annotations[probe.autocrane.io/web]: Forbidden: watchdog probes are not allowed on hostNetwork pods, whose IP is the node's`},
		},
		"location under an app mount": {
			pod:     PodFields{Annotations: map[string]string{PrefixData + "m": "m"}, Spec: app(corev1.VolumeMount{Name: "cache", MountPath: "/data/cache"})},
			wantErr: []string{`metadata.annotations[store.autocrane.io/location]: Invalid value: "/data": overlaps volume mount /data/cache (volume cache) of container app`},
		},
		"injected pod does not clash with its own mount": {
			pod: PodFields{Annotations: map[string]string{PrefixData + "m": "m",
				AnnotationInjected: `{"v":1,"hash":"h","mounts":["autocrane-data"]}`},
				Spec: app(corev1.VolumeMount{Name: "autocrane-data", MountPath: "/data", ReadOnly: true})},
		},
		"bad inject label and probe together": {
			pod: PodFields{Labels: map[string]string{LabelInject: "yes"}, Annotations: map[string]string{PrefixProbe + "w": "localhost:80/x"}, Spec: app()},
			wantErr: []string{
				`metadata.annotations[probe.autocrane.io/w]: Invalid value: "localhost:80/x": the host must be the literal POD_IP (the pod's own IP), not "localhost"; accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH`,
				`metadata.labels[autocrane.io/inject]: Unsupported value: "yes": supported values: "enabled", "disabled"`,
			},
		},
		"typos warn": {
			pod: PodFields{
				Annotations: map[string]string{"prob.autocrane.io/web": "POD_IP:80/w", "store.autocrane.io/locaton": "/x", "zzz.autocrane.io/q": "1", "example.com/x": "y"},
				Labels:      map[string]string{"autocrane.io/injec": "enabled"},
				Spec:        app(),
			},
			wantWarnings: []string{
				"annotation prob.autocrane.io/web is not an AutoCrane key and is ignored; did you mean probe.autocrane.io/web?",
				"annotation store.autocrane.io/locaton is not an AutoCrane key and is ignored; did you mean store.autocrane.io/location?",
				"annotation zzz.autocrane.io/q is not an AutoCrane key and is ignored",
				"label autocrane.io/injec is not an AutoCrane key and is ignored; did you mean autocrane.io/inject?",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			warnings, errs := ValidatePod(ns, tc.pod)
			if diff := cmp.Diff(tc.wantErr, messages(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantWarnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReroot(t *testing.T) {
	errs := field.ErrorList{
		field.Invalid(AnnotationPath(KeyStoreURL), "x", "bad"),
		field.Invalid(NamespaceAnnotationPath("team", KeyStoreURL), "x", "bad"),
	}
	got := messages(Reroot(errs, field.NewPath("spec", "template")))
	want := []string{
		`spec.template.metadata.annotations[store.autocrane.io/url]: Invalid value: "x": bad`,
		`namespace[team].metadata.annotations[store.autocrane.io/url]: Invalid value: "x": bad`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if errs[0].Field != "metadata.annotations[store.autocrane.io/url]" {
		t.Error("Reroot changed its input")
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "abc", 0}, {"abc", "abd", 1}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestAnswersStayBounded(t *testing.T) {
	ann := map[string]string{}
	for i := range 100 {
		ann[PrefixData+"Bad_"+string(rune('a'+i%26))+strings.Repeat("x", i)] = "m"
		ann["zz"+strings.Repeat("q", i)+".autocrane.io/k"] = "v"
	}
	warnings, errs := ValidatePod(Namespace{Name: "team"}, PodFields{Annotations: ann, Spec: &corev1.PodSpec{}})
	if len(errs) != MaxErrors+1 {
		t.Fatalf("%d errors, want %d", len(errs), MaxErrors+1)
	}
	if got := errs[MaxErrors].Error(); got != "metadata.annotations: Forbidden: and 80 more problems not listed; fix the ones above and apply again" {
		t.Errorf("last error: %s", got)
	}
	if len(warnings) != MaxErrors+1 || warnings[MaxErrors] != "and 80 more unknown AutoCrane keys" {
		t.Errorf("%d warnings, last %q", len(warnings), warnings[len(warnings)-1])
	}
}
