package spec

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func errText(err *field.Error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestParseStoreURL(t *testing.T) {
	p := AnnotationPath(KeyStoreURL)
	const form = "; accepted form: http(s)://host[:port][/path]"
	const pre = "metadata.annotations[store.autocrane.io/url]: Invalid value: "
	tests := map[string]struct {
		in, wantErr string
	}{
		"http with port":     {in: "http://repo.data.svc:8080"},
		"https without port": {in: "https://repo.example"},
		"path is kept":       {in: "http://repo:80/prefix"},
		"ipv6 host":          {in: "http://[fd00::1]:8080"},
		"ftp scheme":         {in: "ftp://repo", wantErr: pre + `"ftp://repo": scheme must be http or https` + form},
		"no scheme":          {in: "repo:8080", wantErr: pre + `"repo:8080": scheme must be http or https` + form},
		"userinfo":           {in: "http://user:pw@repo", wantErr: pre + `"http://REDACTED@repo": must not contain userinfo (credentials)` + form},
		"no host":            {in: "http://", wantErr: pre + `"http://": must name a host` + form},
		"query":              {in: "http://repo/?token=x", wantErr: pre + `"http://repo/?REDACTED": must not contain a query or fragment` + form},
		"fragment":           {in: "http://repo/#x", wantErr: pre + `"http://repo/#REDACTED": must not contain a query or fragment` + form},
		"port zero":          {in: "http://repo:0", wantErr: pre + `"http://repo:0": port must be a number from 1 to 65535` + form},
		"port too big":       {in: "http://repo:65536", wantErr: pre + `"http://repo:65536": port must be a number from 1 to 65535` + form},
		"empty port":         {in: "http://repo:", wantErr: pre + `"http://repo:": port must be a number from 1 to 65535` + form},
		"newline":            {in: "http://repo\n", wantErr: pre + `"http://repo\n": must not contain white space or control characters` + form},
		"space":              {in: "http://re po", wantErr: pre + `"http://re po": must not contain white space or control characters` + form},
		"empty":              {in: "", wantErr: pre + `"": scheme must be http or https` + form},
		"opaque":             {in: "http:repo", wantErr: pre + `"http:repo": must name a host` + form},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseStoreURL(tc.in, p)
			if errText(err) != tc.wantErr {
				t.Fatalf("error:\n got %q\nwant %q", errText(err), tc.wantErr)
			}
			if err == nil && got != tc.in {
				t.Errorf("value: got %q, want %q", got, tc.in)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice:hunter2@repo/x?token=abc#f": "https://REDACTED@repo/x?REDACTED#REDACTED",
		"http://repo:8080/path":                    "http://repo:8080/path",
		"http://":                                  "http://",
		"http://a b@c":                             "http://REDACTED",
		"not a url @ all":                          "REDACTED",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLocation(t *testing.T) {
	p := AnnotationPath(KeyStoreLocation)
	const pre = "metadata.annotations[store.autocrane.io/location]: Invalid value: "
	tests := map[string]struct {
		in, wantErr string
	}{
		"default":          {in: "/data"},
		"nested":           {in: "/srv/app/data"},
		"relative":         {in: "data", wantErr: pre + `"data": must be an absolute path, e.g. /data`},
		"root":             {in: "/", wantErr: pre + `"/": must not be /, which would hide the container's root file system`},
		"not clean":        {in: "/data/../etc", wantErr: pre + `"/data/../etc": must be a clean path (/etc)`},
		"trailing slash":   {in: "/data/", wantErr: pre + `"/data/": must be a clean path (/data)`},
		"proc":             {in: "/proc", wantErr: pre + `"/proc": must not be /proc or overlap it`},
		"under etc":        {in: "/etc/app", wantErr: pre + `"/etc/app": must not be /etc or overlap it`},
		"above token path": {in: "/var/run", wantErr: pre + `"/var/run": must not be /var/run/secrets/kubernetes.io or overlap it`},
		"token path":       {in: "/var/run/secrets/kubernetes.io/serviceaccount", wantErr: pre + `"/var/run/secrets/kubernetes.io/serviceaccount": must not be /var/run/secrets/kubernetes.io or overlap it`},
		"sys prefix only":  {in: "/system"},
		"colon":            {in: "/da:ta", wantErr: pre + `"/da:ta": must not contain ':' or control characters`},
		"empty":            {in: "", wantErr: pre + `"": must be an absolute path, e.g. /data`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseLocation(tc.in, p)
			if errText(err) != tc.wantErr {
				t.Fatalf("error:\n got %q\nwant %q", errText(err), tc.wantErr)
			}
		})
	}
}

func TestParseSeconds(t *testing.T) {
	p := AnnotationPath(KeyMinReadySeconds)
	const msg = "must be whole seconds from 0 to 86400"
	tests := map[string]struct {
		in      string
		want    int32
		wantErr bool
	}{
		"zero": {in: "0"}, "typical": {in: "30", want: 30}, "max": {in: "86400", want: 86400},
		"too big": {in: "86401", wantErr: true}, "negative": {in: "-1", wantErr: true},
		"duration": {in: "30s", wantErr: true}, "float": {in: "1.5", wantErr: true},
		"empty": {in: "", wantErr: true}, "overflow": {in: "99999999999999999999", wantErr: true},
		"plus sign": {in: "+5", want: 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSeconds(tc.in, p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error: got %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !strings.HasSuffix(err.Error(), msg) {
				t.Errorf("message %q does not end with %q", err.Error(), msg)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseSidecarMode(t *testing.T) {
	p := AnnotationPath(KeySidecarMode)
	for _, ok := range []string{"native", "classic"} {
		if m, err := ParseSidecarMode(ok, p); err != nil || string(m) != ok {
			t.Errorf("%s: got %q, %v", ok, m, err)
		}
	}
	_, err := ParseSidecarMode("Native", p)
	want := `metadata.annotations[inject.autocrane.io/sidecar-mode]: Unsupported value: "Native": supported values: "native", "classic"`
	if errText(err) != want {
		t.Errorf("got %q\nwant %q", errText(err), want)
	}
}

func TestParseSource(t *testing.T) {
	p := AnnotationPath(PrefixData + "models")
	const form = "; accepted form: git:URL[#ref], http:http(s)://host/file or dir:/path"
	const pre = "metadata.annotations[data.autocrane.io/models]: Invalid value: "
	tests := map[string]struct {
		in       string
		wantKind SourceKind
		wantLoc  string
		wantErr  string
	}{
		"git https":        {in: "git:https://example.invalid/repo.git#main", wantKind: SourceGit, wantLoc: "https://example.invalid/repo.git#main"},
		"http archive":     {in: "http:https://example.invalid/m.tar.gz", wantKind: SourceHTTP, wantLoc: "https://example.invalid/m.tar.gz"},
		"dir":              {in: "dir:/srv/models", wantKind: SourceDir, wantLoc: "/srv/models"},
		"unknown kind":     {in: "s3:bucket/x", wantErr: pre + `"s3:bucket/x": unknown source kind "s3"` + form},
		"empty location":   {in: "git:", wantErr: pre + `"git:": source location is empty` + form},
		"git option":       {in: "git:--upload-pack=x", wantErr: pre + `"git:--upload-pack=x": git location must be a URL, not an option or ext:: transport` + form},
		"git password":     {in: "git:https://bot:s3cret@example.invalid/r.git", wantErr: pre + `"git:https://REDACTED@example.invalid/r.git": git URL must not carry a password or token; give credentials to the data repository from a Secret (--credentials-dir)` + form},
		"git ssh user":     {in: "git:ssh://git@example.invalid/r.git", wantKind: SourceGit, wantLoc: "ssh://git@example.invalid/r.git"},
		"git ext":          {in: "git:ext::sh -c x", wantErr: pre + `"git:ext::sh -c x": git location must be a URL, not an option or ext:: transport` + form},
		"http not url":     {in: "http:ftp://x/y", wantErr: pre + `"http:ftp://x/y": http location must be an http(s) URL without userinfo` + form},
		"http userinfo":    {in: "http:https://u:p@x/y", wantErr: pre + `"http:https://u:p@x/y": http location must be an http(s) URL without userinfo` + form},
		"dir relative":     {in: "dir:models", wantErr: pre + `"dir:models": dir location must be a clean absolute path` + form},
		"git control char": {in: "git:https://x/\r\nHost: y", wantErr: pre + `"git:https://x/\r\nHost: y": must not contain control characters`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSource("models", tc.in, p)
			if errText(err) != tc.wantErr {
				t.Fatalf("error:\n got %q\nwant %q", errText(err), tc.wantErr)
			}
			if err == nil && (got.Kind != tc.wantKind || got.Location != tc.wantLoc || got.Name != "models") {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestParseResources(t *testing.T) {
	p := AnnotationPath(PrefixResources + "datadeployer")
	const pre = "metadata.annotations[resources.autocrane.io/datadeployer]: Invalid value: "
	tests := map[string]struct {
		in      string
		wantErr []string
	}{
		"requests and limits": {in: `{"requests":{"cpu":"20m","memory":"64Mi"},"limits":{"memory":"128Mi"}}`},
		"limits only":         {in: `{"limits":{"cpu":"1","ephemeral-storage":"1Gi"}}`},
		"empty object":        {in: `{}`},
		"negative":            {in: `{"limits":{"cpu":"-1"}}`, wantErr: []string{pre + `"{\"limits\":{\"cpu\":\"-1\"}}": limits.cpu: "-1" must be from 0 to 1Ei`}},
		"enormous":            {in: `{"limits":{"memory":"2Ei"}}`, wantErr: []string{pre + `"{\"limits\":{\"memory\":\"2Ei\"}}": limits.memory: "2Ei" must be from 0 to 1Ei`}},
		"too many digits":     {in: `{"limits":{"memory":"` + strings.Repeat("9", 40) + `"}}`, wantErr: []string{pre + `"{\"limits\":{\"memory\":\"` + strings.Repeat("9", 40) + `\"}}": limits.memory: longer than 32 bytes`}},
		"stray brace":         {in: `{}}`, wantErr: []string{pre + `"{}}": not valid JSON: unexpected data after the JSON value; accepted form: {"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`}},
		"not json":            {in: `cpu=10m`, wantErr: []string{pre + `"cpu=10m": not valid JSON: invalid character 'c' looking for beginning of value; accepted form: {"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`}},
		"unknown field":       {in: `{"request":{}}`, wantErr: []string{pre + `"{\"request\":{}}": not valid JSON: json: unknown field "request"; accepted form: {"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`}},
		"trailing data":       {in: `{}{}`, wantErr: []string{pre + `"{}{}": not valid JSON: unexpected data after the JSON value; accepted form: {"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`}},
		"bad quantity and resource": {in: `{"requests":{"cpu":"lots","gpu":"1"}}`, wantErr: []string{
			pre + `"{\"requests\":{\"cpu\":\"lots\",\"gpu\":\"1\"}}": requests.cpu: "lots" is not a quantity such as 100m or 64Mi`,
			pre + `"{\"requests\":{\"cpu\":\"lots\",\"gpu\":\"1\"}}": requests.gpu: unsupported resource; supported: cpu, memory, ephemeral-storage`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, errs := ParseResources(tc.in, p)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.wantErr, "\n") {
				t.Fatalf("errors:\n got %q\nwant %q", got, tc.wantErr)
			}
		})
	}
}

func TestShownCutsLongValues(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes
	got := shown(long)
	if !strings.HasSuffix(got, "... (400 bytes)") || len(got) > maxShown+20 {
		t.Fatalf("got %q", got)
	}
	if !strings.HasPrefix(long, strings.TrimSuffix(got, "... (400 bytes)")) {
		t.Fatalf("cut inside a rune: %q", got)
	}
}

func TestPathsOverlap(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want bool
	}{
		"same": {"/data", "/data", true}, "under": {"/data/x", "/data", true}, "above": {"/data", "/data/x", true},
		"sibling prefix": {"/data", "/database", false}, "disjoint": {"/a", "/b", false}, "root": {"/", "/x", true},
	}
	for name, tc := range tests {
		if got := PathsOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: PathsOverlap(%q, %q) = %v", name, tc.a, tc.b, got)
		}
	}
}
