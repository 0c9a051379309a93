package sourceconfig

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// checkConfig holds for every configuration: valid names, kinds and
// locations that spec accepts, and no refused name also accepted.
func checkConfig(t *testing.T, c Config) {
	t.Helper()
	for name, s := range c.Sources {
		if len(validation.IsDNS1123Label(name)) > 0 || s.Name != name || s.Location == "" {
			t.Fatalf("accepted %q: %+v", name, s)
		}
		if _, refused := c.Invalid[name]; refused {
			t.Fatalf("%q is both accepted and refused", name)
		}
	}
}

func FuzzParseAnnotationsFile(f *testing.F) {
	f.Add([]byte("data.autocrane.io/m=\"git:https://h/r.git#main\"\nother=\"x\"\n"))
	f.Add([]byte("data.autocrane.io/m=\"dir:/srv\"\r\ndata.autocrane.io/n=\"n\"\n"))
	f.Add([]byte("=\"\"\nk=\"\\xff\"\nk=\"unterminated\n"))
	f.Add([]byte(fmt.Sprintf("data.autocrane.io/s=%q\n", "http:https://u:p@h/f")))
	f.Fuzz(func(t *testing.T, data []byte) {
		ann, _ := ParseAnnotationsFile(data)
		c := FromAnnotations(ann)
		checkConfig(t, c)
		for _, err := range c.Invalid {
			if strings.Contains(err.Error(), "u:p@") {
				t.Fatalf("a refusal repeats userinfo: %v", err)
			}
		}
	})
}

func FuzzParseSourcesFile(f *testing.F) {
	f.Add([]byte("a: dir:/a\nb: 'git:https://h/b.git'\n"))
	f.Add([]byte(`{"a":"http:https://h/f.tgz","B":"dir:/b"}`))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Add([]byte("- list"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseSourcesFile(data)
		if err == nil {
			checkConfig(t, c)
		}
	})
}

func FuzzParseSourceFlag(f *testing.F) {
	for _, s := range []string{"m=git:https://h/r", "m", "=dir:/x", "m=dir:relative", "m=http:ftp://x", "m=git:-x", "m=git:ext::x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseSourceFlag(v)
		if err != nil {
			return
		}
		if len(validation.IsDNS1123Label(s.Name)) > 0 || strings.HasPrefix(s.Location, "-") || strings.HasPrefix(s.Location, "ext::") {
			t.Fatalf("accepted %q as %+v", v, s)
		}
	})
}
