package spec

// Fuzz targets for every parser of the contract. Each target checks what the
// parser promises, not only that it does not panic:
//
//   - an accepted value has the property the parser exists for (a probe URL
//     names only the pod's IP, a location is not over a system directory, a
//     store URL carries no credentials, ...);
//   - an error's message stays small whatever the input size (values are cut
//     to 128 bytes; see maxErrorBody), and so does the message of a whole
//     list of errors (maxAnswer);
//   - no call may hang: the fuzzing engine reports an input that stalls a
//     worker (tests never measure time; see docs/security.md).
//
// Run one with, for example:
//
//	go test ./spec/ -run '^$' -fuzz '^FuzzParseProbe$' -fuzztime 30s
//
// The seeds below (f.Add) and the files in testdata/fuzz/FuzzXxx/ run as
// ordinary tests with go test. testdata holds the nasty inputs: CR/LF,
// userinfo, IPv6-mapped and hex IPs, 1 MiB values, 10,000-deep JSON and
// invalid UTF-8; an input the fuzzer finds failing lands there too and stays
// as a regression seed.

import (
	"encoding/json"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// maxErrorDetail bounds the reason AutoCrane writes into an error.
	maxErrorDetail = 1024
	// maxErrorBody bounds an error's body: its type, the quoted value (cut to
	// 128 bytes, which %q may grow up to four times) and the detail.
	maxErrorBody = 2048
	// maxAnswer bounds, with twice the input's size, the message of a whole
	// error list as the webhook sends it (apierrors.NewInvalid joins the
	// messages with ErrorList.ToAggregate, in time quadratic in their total
	// size): however bad the input, the answer stays readable and cheap.
	maxAnswer = 128 << 10
	// mib is the size of the huge seeds.
	mib = 1 << 20
)

// fuzzPodIPs are the pod IPs a probe URL is built for in the checks.
var fuzzPodIPs = []string{"10.1.2.3", "fd00:10:1::2:3"}

// fuzzPath is the field path the single-value parsers report under.
var fuzzPath = AnnotationPath("fuzz.autocrane.io/key")

// checkError checks one error of a parser: a known type, a small body, a
// path that repeats at most the key (not the value).
func checkError(t *testing.T, e *field.Error, maxField int) {
	t.Helper()
	if e == nil {
		t.Fatal("nil *field.Error in a list")
	}
	if e.Type == "" || e.Field == "" {
		t.Fatalf("error without a type or a path: %#v", e)
	}
	if n := len(e.Detail); n > maxErrorDetail {
		t.Fatalf("error detail is %d bytes (max %d): %.300q...", n, maxErrorDetail, e.Detail)
	}
	if n := len(e.ErrorBody()); n > maxErrorBody {
		t.Fatalf("error body is %d bytes (max %d): %.300q...", n, maxErrorBody, e.ErrorBody())
	}
	if n := len(e.Field); n > maxField {
		t.Fatalf("error path is %d bytes (max %d): %.300q...", n, maxField, e.Field)
	}
}

// checkErrors checks every error of a list, that the list is sorted by path
// as SortErrors leaves it, and that the message of the whole list (as the
// webhook builds it) is cheap and bounded for an input of size bytes.
func checkErrors(t *testing.T, errs field.ErrorList, maxField, size int) {
	t.Helper()
	for _, e := range errs {
		checkError(t, e, maxField)
	}
	sorted := errs
	if len(errs) == MaxErrors+1 {
		// LimitErrors' summary comes last, whatever its path.
		sorted = errs[:MaxErrors]
	}
	if len(errs) > MaxErrors+1 {
		t.Fatalf("%d errors in one answer (max %d)", len(errs), MaxErrors+1)
	}
	if !slices.IsSortedFunc(sorted, func(a, b *field.Error) int { return strings.Compare(a.Field, b.Field) }) {
		t.Fatalf("errors are not sorted by path: %v", fuzzMessages(errs))
	}
	if len(errs) == 0 {
		return
	}
	var msg string
	msg = errs.ToAggregate().Error()
	if n := len(msg); n > maxAnswer+2*size {
		t.Fatalf("%d errors make a %d-byte message for a %d-byte input (max %d)", len(errs), n, size, maxAnswer+2*size)
	}
}

func fuzzMessages(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// fixedPathLen bounds the path of an error reported under fuzzPath.
var fixedPathLen = len(fuzzPath.String()) + 64

// hasSpaceOrControl reports white space or control characters.
func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// under reports whether p is dir or lies under it, or dir lies under p: a
// mount at p would then cover dir or sit inside it. Written independently of
// PathsOverlap, which it checks.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/") || strings.HasPrefix(dir, p+"/")
}

// forbiddenLocations are the directories no data location may cover or lie
// under (docs/annotations.md; the service-account token directory in both
// of its usual spellings).
var forbiddenLocations = []string{"/proc", "/dev", "/sys", "/etc", "/var/run/secrets/kubernetes.io/serviceaccount", "/run/secrets/kubernetes.io/serviceaccount"}

func FuzzParseStoreURL(f *testing.F) {
	for _, s := range []string{
		"http://repo.team:8080", "https://repo.example.com/base/", "http://[fd00::1]:8080/x", "http://10.0.0.1",
		"ftp://repo", "http://user:pass@repo", "http://@repo", "http://repo@evil", "http://repo/?token=x", "http://repo?",
		"http://repo/#frag", "http://repo#", "http://repo:0", "http://repo:65536", "http://repo:", "http://repo:+80",
		"http:///path", "http:repo", "//repo", "HTTP://REPO", "http://repo\r\nHost: evil", "http://re po",
		"http://[::ffff:127.0.0.1]/", "http://0x7f000001/", "http://POD_IP@evil/", "http://repo\\@evil/",
		"http://[fe80::1%25eth0]/", "http://a%2540b/", "http://\xff/", "http://ex\u202eample/", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var got string
		var ferr *field.Error
		got, ferr = ParseStoreURL(v, fuzzPath)
		if ferr != nil {
			checkError(t, ferr, fixedPathLen)
			return
		}
		if got != v {
			t.Fatalf("accepted %q as %q", v, got)
		}
		if hasSpaceOrControl(v) {
			t.Fatalf("accepted %q with white space or control characters", v)
		}
		u, err := url.Parse(v)
		if err != nil {
			t.Fatalf("accepted %q, which net/url rejects: %v", v, err)
		}
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			t.Fatalf("accepted %q with scheme %q", v, u.Scheme)
		case u.User != nil || strings.Contains(u.Host, "@"):
			t.Fatalf("accepted %q with userinfo", v)
		case u.Hostname() == "":
			t.Fatalf("accepted %q without a host", v)
		case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" || strings.Contains(v, "#"):
			t.Fatalf("accepted %q with a query or fragment", v)
		case u.Opaque != "":
			t.Fatalf("accepted opaque URL %q", v)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("accepted %q with port %q", v, p)
			}
		}
	})
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{
		"/data", "/srv/models", "/", "data", "/data/", "//data", "/data/../etc", "/proc", "/proc/self", "/etc/passwd",
		"/dev/shm", "/sys", "/var/run/secrets/kubernetes.io/serviceaccount", "/run/secrets/kubernetes.io", "/var",
		"/var/run", "/data\x00", "/da:ta", "/data\r\n", "/data/..x", "/etcetera", "/PROC", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var got string
		var ferr *field.Error
		got, ferr = ParseLocation(v, fuzzPath)
		if ferr != nil {
			checkError(t, ferr, fixedPathLen)
			return
		}
		switch {
		case got != v:
			t.Fatalf("accepted %q as %q", v, got)
		case !strings.HasPrefix(v, "/") || v == "/":
			t.Fatalf("accepted %q: not an absolute path below /", v)
		case path.Clean(v) != v:
			t.Fatalf("accepted unclean path %q", v)
		case strings.ContainsAny(v, ":\x00\r\n"):
			t.Fatalf("accepted %q with ':' or a control character", v)
		}
		for _, dir := range forbiddenLocations {
			if under(v, dir) {
				t.Fatalf("accepted %q, which covers or lies under %s", v, dir)
			}
		}
	})
}

func FuzzParseSeconds(f *testing.F) {
	for _, s := range []string{
		"0", "30", "86400", "86401", "-1", "+5", "-0", "007", "1e3", "0x10", "1_000", " 5", "5 ", "5\n",
		"\u0663", "2147483648", "9223372036854775808", "", "3.5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var n int32
		var ferr *field.Error
		n, ferr = ParseSeconds(v, fuzzPath)
		if ferr != nil {
			checkError(t, ferr, fixedPathLen)
			return
		}
		if n < 0 || n > MaxSeconds {
			t.Fatalf("accepted %q as %d, outside 0..%d", v, n, MaxSeconds)
		}
		if want, err := strconv.ParseInt(v, 10, 64); err != nil || want != int64(n) {
			t.Fatalf("accepted %q as %d, which is not its decimal value", v, n)
		}
	})
}

func FuzzParseSource(f *testing.F) {
	for _, s := range [][2]string{
		{"models", "git:https://git.example/repo.git"}, {"m", "git:https://git.example/repo.git#main"},
		{"m", "http:https://files.example/m.tar.gz"}, {"m", "dir:/srv/data"}, {"m", "git:-oProxyCommand=evil"},
		{"m", "git:ext::sh -c evil"}, {"m", "git:--upload-pack=evil"}, {"m", "http:ftp://x/f"},
		{"m", "http:http://u:p@x/f"}, {"m", "http:http:///f"}, {"m", "dir:relative"}, {"m", "dir:/a/../b"},
		{"m", "s3:bucket"}, {"m", "git:"}, {"m", ":"}, {"m", "git:https://x\r\n"}, {"m", "dir:/srv\x00"},
		{"", "dir:/srv"}, {"m", "http:https://x/\xff"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, v string) {
		var src Source
		var ferr *field.Error
		src, ferr = ParseSource(name, v, fuzzPath)
		if ferr != nil {
			checkError(t, ferr, fixedPathLen)
			return
		}
		kind, loc, _ := strings.Cut(v, ":")
		if src.Name != name || string(src.Kind) != kind || src.Location != loc {
			t.Fatalf("ParseSource(%q, %q) = %+v", name, v, src)
		}
		if loc == "" || strings.ContainsAny(loc, "\x00\r\n") {
			t.Fatalf("accepted location %q", loc)
		}
		switch src.Kind {
		case SourceGit:
			if strings.HasPrefix(loc, "-") || strings.HasPrefix(loc, "ext::") {
				t.Fatalf("accepted git location %q, an option or the ext:: transport", loc)
			}
		case SourceHTTP:
			u, err := url.Parse(loc)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				t.Fatalf("accepted http location %q (%v)", loc, err)
			}
		case SourceDir:
			if !strings.HasPrefix(loc, "/") || path.Clean(loc) != loc {
				t.Fatalf("accepted dir location %q", loc)
			}
		default:
			t.Fatalf("accepted kind %q", src.Kind)
		}
	})
}

func FuzzParseResources(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`,
		`{"requests":{"ephemeral-storage":"1Gi"}}`, `{"requests":{"nvidia.com/gpu":"1"}}`, `{"requests":{"cpu":"ten"}}`,
		`{"requests":{"cpu":10}}`, `{"extra":1}`, `{"requests":{"cpu":"1"}}{}`, `null`, `[]`, `""`, `{"requests":null}`,
		`{"Requests":{"cpu":"1"}}`, `{"requests":{"cpu":"1","cpu":"2"}}`, `{"requests":{"cpu":"1Ei"}}`,
		`{"limits":{"memory":"1e40"}}`, `{"requests":{"cpu":"1e-1000000"}}`, `{"requests":{"cpu":"0.0000000001"}}`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var rr corev1.ResourceRequirements
		var errs field.ErrorList
		rr, errs = ParseResources(v, fuzzPath)
		if len(errs) > 0 {
			checkErrors(t, errs, fixedPathLen, len(v))
			// One error per resource name at most, plus one for the JSON.
			if max := strings.Count(v, ":") + 1; len(errs) > max {
				t.Fatalf("%d errors for %d entries", len(errs), max)
			}
			return
		}
		if !json.Valid([]byte(v)) {
			t.Fatalf("accepted %q, which is not (only) a JSON value", v)
		}
		for what, list := range map[string]corev1.ResourceList{"requests": rr.Requests, "limits": rr.Limits} {
			for name, q := range list {
				if !slices.Contains(resourceNames, string(name)) {
					t.Fatalf("accepted %s.%s", what, name)
				}
				// The API server rejects negative resources, naming the
				// injected container: the annotation must be rejected first.
				if q.Sign() < 0 {
					t.Fatalf("accepted %s.%s = %s", what, name, q.String())
				}
				// The pod carries q as q.String(): it must mean the same.
				back, err := resource.ParseQuantity(q.String())
				if err != nil || back.Cmp(q) != 0 {
					t.Fatalf("%s.%s: accepted a quantity that serializes as %q, which reads back as %v (%v); input %.200q",
						what, name, q.String(), back.AsDec(), err, v)
				}
			}
		}
	})
}

func FuzzParseInjected(f *testing.F) {
	full := Injected{Version: InjectedVersion, Hash: "sha256:0011223344556677", InitContainers: []string{"autocrane-datadeployer"},
		Containers: []string{"autocrane-watchdoghealthz"}, Volumes: []string{"autocrane-data", "autocrane-podinfo"},
		Mounts: []string{"autocrane-data"}, Annotations: []string{AnnotationDefaultContainer}}
	for _, s := range []string{
		full.String(), `{"v":1}`, `{"v":1,"hash":""}`, `{"v":2,"hash":"h"}`, `{"v":1,"extra":1}`, `{"V":1,"HASH":"h"}`,
		`{"v":1,"containers":[]}`, `{"v":1,"containers":null}`, `{"v":1.0}`, `{"v":"1"}`, `null`, `""`, ``, `{"v":1}{}`,
		`{"v":1,"containers":["\ud800"]}`, `{"v":1,"containers":["a","a"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var rec Injected
		var ferr *field.Error
		rec, ferr = ParseInjected(v)
		if ferr != nil {
			checkError(t, ferr, len(AnnotationPath(AnnotationInjected).String()))
			return
		}
		if v == "" {
			if !cmp.Equal(rec, Injected{}) {
				t.Fatalf("empty value gave %+v", rec)
			}
			return
		}
		if rec.Version != InjectedVersion {
			t.Fatalf("accepted version %d", rec.Version)
		}
		if !json.Valid([]byte(v)) {
			t.Fatalf("accepted %q, which is not (only) a JSON value", v)
		}
		again, ferr := ParseInjected(rec.String())
		if ferr != nil {
			t.Fatalf("String() of an accepted record does not parse: %v", ferr)
		}
		if diff := cmp.Diff(rec, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("record changed over String and ParseInjected (-first +second):\n%s", diff)
		}
	})
}

func FuzzParseProbe(f *testing.F) {
	for _, s := range [][2]string{
		{"web", "POD_IP:8080/healthz"}, {"web", "https://POD_IP:8443/healthz"}, {"web", "http://POD_IP:80/?q=1"},
		{"web", "POD_IP:80//evil.example/x"}, {"web", "10.0.0.1:80/"}, {"web", "localhost:80/"},
		{"web", "POD_IP@evil:80/"}, {"web", "http://POD_IP:80@evil/"}, {"web", "http://evil@POD_IP:80/"},
		{"web", "POD_IP:80#@evil/"}, {"web", "POD_IP:80/#frag"}, {"web", "POD_IP:80/\r\nHost: evil"},
		{"web", "POD_IP:80"}, {"web", "POD_IP:0/"}, {"web", "POD_IP:65536/"}, {"web", "POD_IP:+80/"}, {"web", "POD_IP:080/"},
		{"web", "[POD_IP]:80/"}, {"web", "[::ffff:127.0.0.1]:80/"}, {"web", "0x7f.1:80/"}, {"web", "2130706433:80/"},
		{"web", "POD_IP.evil.example:80/"}, {"web", "pod_ip:80/"}, {"web", "ftp://POD_IP:80/"}, {"web", "http:/\\/evil/"},
		{"web", "POD_IP:80\\@evil/"}, {"web", "POD_IP:80/\\evil"}, {"web", "POD_IP:80/%2F%2Fevil"}, {"Web", "POD_IP:80/"},
		{"", "POD_IP:80/"}, {"web", "POD_IP:80/%zz"}, {"web", "http://POD_IP:80/?x#y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, v string) {
		var pr Probe
		var ferr *field.Error
		pr, ferr = ParseProbe(name, v, fuzzPath)
		if ferr != nil {
			checkError(t, ferr, fixedPathLen)
			return
		}
		if pr.Name != name || len(validation.IsDNS1123Label(name)) > 0 {
			t.Fatalf("accepted watchdog name %q as %q", name, pr.Name)
		}
		if pr.Scheme != "http" && pr.Scheme != "https" {
			t.Fatalf("accepted %q with scheme %q", v, pr.Scheme)
		}
		if pr.Port < 1 || pr.Port > 65535 || !strings.HasPrefix(pr.Path, "/") {
			t.Fatalf("accepted %q as %+v", v, pr)
		}
		// The property that matters: whatever the annotation says, the URL
		// the prober builds names the pod's IP and port, and nothing else.
		for _, ip := range fuzzPodIPs {
			raw := pr.URL(ip)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("%q: probe URL %q does not parse: %v", v, raw, err)
			}
			port := strconv.Itoa(pr.Port)
			switch {
			case u.Scheme != pr.Scheme:
				t.Fatalf("%q: probe URL %q has scheme %q", v, raw, u.Scheme)
			case u.User != nil:
				t.Fatalf("%q: probe URL %q has userinfo", v, raw)
			case u.Host != net.JoinHostPort(ip, port) || u.Hostname() != ip || u.Port() != port:
				t.Fatalf("%q: probe URL %q targets host %q (hostname %q, port %q), not the pod's %s:%s", v, raw, u.Host, u.Hostname(), u.Port(), ip, port)
			case u.Opaque != "" || u.Fragment != "":
				t.Fatalf("%q: probe URL %q has an opaque part or a fragment", v, raw)
			}
		}
	})
}

// fuzzKeys are the keys FuzzParsePod and FuzzValidatePod set from their
// slot argument; a key ending in "/" takes the fuzzed name after it.
var fuzzKeys = []string{
	KeyStoreURL, KeyStoreLocation, PrefixData, KeyMinReadySeconds, KeyAlwaysHealthyAfterSeconds, KeySidecarMode,
	PrefixResources + string(ComponentDataDeployer), PrefixResources + string(ComponentWatchdogHealthz), PrefixResources,
	PrefixProbe, AnnotationInjected, PrefixWatchdogStatus, "prob.autocrane.io/", "autocrane.io/", "example.com/",
}

// fuzzMaps builds the namespace and pod annotations of FuzzParsePod and
// FuzzValidatePod: two JSON objects (anything else is an empty map), plus
// one key chosen by slot (the low bits pick from fuzzKeys, the high bit puts
// it on the namespace) set to value.
func fuzzMaps(nsJSON, podJSON string, slot uint8, name, value string) (ns, pod map[string]string) {
	ns, pod = map[string]string{}, map[string]string{}
	_ = json.Unmarshal([]byte(nsJSON), &ns)
	_ = json.Unmarshal([]byte(podJSON), &pod)
	if ns == nil {
		ns = map[string]string{}
	}
	if pod == nil {
		pod = map[string]string{}
	}
	key := fuzzKeys[int(slot&0x7f)%len(fuzzKeys)]
	if strings.HasSuffix(key, "/") {
		key += name
	}
	if slot&0x80 != 0 {
		ns[key] = value
	} else {
		pod[key] = value
	}
	return ns, pod
}

// maxFieldFor bounds the error paths of a namespace and pod: the longest key
// of either, the namespace name and a fixed part.
func maxFieldFor(nsName string, maps ...map[string]string) int {
	n := 0
	for _, m := range maps {
		for k := range m {
			n = max(n, len(k))
		}
	}
	return n + len(nsName) + 64
}

func FuzzParsePod(f *testing.F) {
	add := func(ns, pod string, slot uint8, name, value string) { f.Add(ns, pod, slot, name, value) }
	add(`{}`, `{}`, 0, "", "http://repo.team:8080")
	add(`{"store.autocrane.io/url":"http://repo:8080"}`, `{"data.autocrane.io/models":"models"}`, 1, "", "/srv/data")
	add(`{}`, `{"store.autocrane.io/url":"http://repo:8080"}`, 2, "models", "models")
	add(`{}`, `{}`, 2, "models", "git:https://git.example/m.git")
	add(`{}`, `{"data.autocrane.io/a":"a"}`, 2, "b", "dir:/srv/b")
	add(`{}`, `{"healthz.autocrane.io/min-ready-seconds":"30"}`, 4, "", "10")
	add(`{}`, `{}`, 4, "", "600")
	add(`{"inject.autocrane.io/sidecar-mode":"classic"}`, `{}`, 5, "", "native")
	add(`{}`, `{}`, 6, "", `{"requests":{"cpu":"20m"},"limits":{"memory":"1Gi"}}`)
	add(`{}`, `{}`, 0x80|7, "", `{"requests":{"gpu":"1"}}`)
	add(`{}`, `{}`, 8, "sidecar", `{}`)
	add(`{}`, `{}`, 0x80|8, "datadeployr", `{}`)
	add(`{}`, `{}`, 0x80|2, "models", "models")
	add(`not json`, `[1,2]`, 0x80|0, "", "ftp://x")
	add(`{}`, `{"store.autocrane.io/url":"http://repo:8080","store.autocrane.io/location":"/data"}`, 0x80|1, "", "/proc")
	f.Fuzz(func(t *testing.T, nsJSON, podJSON string, slot uint8, name, value string) {
		nsAnn, podAnn := fuzzMaps(nsJSON, podJSON, slot, name, value)
		ns := Namespace{Name: "team", Annotations: nsAnn}
		size := len(nsJSON) + len(podJSON) + len(name) + len(value)
		var p Pod
		var errs field.ErrorList
		p, errs = ParsePod(ns, podAnn)

		// The same input gives the same answer, in the same order, whatever
		// the map iteration order.
		func() {
			p2, errs2 := ParsePod(ns, podAnn)
			if diff := cmp.Diff(fuzzMessages(errs), fuzzMessages(errs2)); diff != "" {
				t.Fatalf("errors differ between two calls:\n%s", diff)
			}
			if diff := cmp.Diff(p, p2, cmp.Comparer(func(a, b *field.Path) bool { return a.String() == b.String() })); len(errs) == 0 && diff != "" {
				t.Fatalf("result differs between two calls:\n%s", diff)
			}
		}()
		if len(errs) > 0 {
			// Answers carry at most MaxErrors (ValidatePod, Mutate).
			checkErrors(t, LimitErrors(errs), maxFieldFor(ns.Name, nsAnn, podAnn), size)
			for _, e := range errs {
				if !strings.HasPrefix(e.Field, "metadata.annotations[") && !strings.HasPrefix(e.Field, "namespace[team].metadata.annotations[") {
					t.Fatalf("error outside the annotations: %v", e)
				}
			}
			return
		}
		checkParsedPod(t, ns, podAnn, p)
	})
}

// effective is the value ParsePod must use for key: the pod's, else, for
// keys with namespace defaults, the namespace's.
func effective(ns Namespace, pod map[string]string, key string) (string, bool) {
	if v, ok := pod[key]; ok {
		return v, true
	}
	v, ok := ns.Annotations[key]
	return v, ok
}

// checkParsedPod checks a Pod that ParsePod accepted without errors.
func checkParsedPod(t *testing.T, ns Namespace, pod map[string]string, p Pod) {
	t.Helper()
	if v, ok := effective(ns, pod, KeyStoreURL); ok != (p.Store.URL != "") || (ok && v != p.Store.URL) {
		t.Fatalf("store URL %q, but the pod and namespace say %q (set: %v)", p.Store.URL, v, ok)
	}
	if p.Store.URL != "" {
		if _, err := ParseStoreURL(p.Store.URL, fuzzPath); err != nil {
			t.Fatalf("store URL %q does not parse: %v", p.Store.URL, err)
		}
	}
	wantLoc, ok := effective(ns, pod, KeyStoreLocation)
	if !ok {
		wantLoc = DefaultLocation
	}
	if p.Store.Location != wantLoc {
		t.Fatalf("location %q, want %q", p.Store.Location, wantLoc)
	}
	for _, dir := range forbiddenLocations {
		if under(p.Store.Location, dir) {
			t.Fatalf("location %q covers or lies under %s", p.Store.Location, dir)
		}
	}
	if len(p.Deployments) > 0 && len(p.Sources) > 0 {
		t.Fatalf("both deployments and sources: %+v", p)
	}
	if len(p.Deployments) > 0 && p.Store.URL == "" {
		t.Fatalf("deployments without a store URL: %+v", p)
	}
	if !slices.IsSortedFunc(p.Deployments, func(a, b DataDeployment) int { return strings.Compare(a.Name, b.Name) }) ||
		!slices.IsSortedFunc(p.Sources, func(a, b Source) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("deployments or sources not sorted: %+v", p)
	}
	for _, d := range p.Deployments {
		// Only the pod's own annotations declare deployments.
		if pod[PrefixData+d.Name] != d.Source || len(validation.IsDNS1123Label(d.Name)) > 0 || len(validation.IsDNS1123Label(d.Source)) > 0 {
			t.Fatalf("deployment %+v does not come from a valid pod annotation", d)
		}
	}
	for _, s := range p.Sources {
		if _, err := ParseSource(s.Name, pod[PrefixData+s.Name], fuzzPath); err != nil {
			t.Fatalf("source %+v does not parse: %v", s, err)
		}
	}
	minV, hasMin := pod[KeyMinReadySeconds]
	if hasMin != (p.Healthz != nil) {
		t.Fatalf("healthz %+v, but min-ready-seconds set: %v", p.Healthz, hasMin)
	}
	if p.Healthz != nil {
		n, err := strconv.ParseInt(minV, 10, 64)
		if err != nil || n != int64(p.Healthz.MinReadySeconds) || n < 0 || n > MaxSeconds {
			t.Fatalf("min-ready-seconds %q parsed as %d", minV, p.Healthz.MinReadySeconds)
		}
		if a := p.Healthz.AlwaysHealthyAfterSeconds; a != nil && (*a < p.Healthz.MinReadySeconds || *a > MaxSeconds) {
			t.Fatalf("always-healthy-after-seconds %d with min-ready-seconds %d", *a, p.Healthz.MinReadySeconds)
		}
	}
	if v, ok := effective(ns, pod, KeySidecarMode); ok != (p.SidecarMode != "") || (ok && v != string(p.SidecarMode)) ||
		(ok && p.SidecarMode != SidecarNative && p.SidecarMode != SidecarClassic) {
		t.Fatalf("sidecar mode %q, but the pod and namespace say %q", p.SidecarMode, v)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(p.Resources)), slices.Sorted(maps.Keys(p.ResourcePaths))) {
		t.Fatalf("resources and their paths differ: %v %v", p.Resources, p.ResourcePaths)
	}
	for c := range p.Resources {
		if !slices.Contains(Components, c) {
			t.Fatalf("resources for unknown component %q", c)
		}
		if _, ok := effective(ns, pod, PrefixResources+string(c)); !ok {
			t.Fatalf("resources for %q, which neither the pod nor the namespace sets", c)
		}
	}
}

func FuzzValidatePod(f *testing.F) {
	add := func(ns, pod, labels string, slot uint8, name, value string, hostNetwork bool, mount string) {
		f.Add(ns, pod, labels, slot, name, value, hostNetwork, mount)
	}
	add(`{"store.autocrane.io/url":"http://repo:8080"}`, `{}`, `{}`, 2, "models", "models", false, "/var/cache")
	add(`{}`, `{"store.autocrane.io/url":"http://repo:8080","data.autocrane.io/m":"m"}`, `{}`, 1, "", "/data", false, "/data/cache")
	add(`{}`, `{}`, `{}`, 9, "web", "POD_IP:8080/healthz", true, "")
	add(`{}`, `{}`, `{}`, 9, "web", "POD_IP:8080/healthz", false, "")
	add(`{}`, `{}`, `{"autocrane.io/role":"datarepository"}`, 2, "models", "git:https://git.example/m.git", false, "")
	add(`{}`, `{}`, `{"autocrane.io/role":"repo"}`, 2, "models", "dir:/srv", false, "")
	add(`{}`, `{}`, `{"autocrane.io/inject":"yes"}`, 12, "web", "POD_IP:80/", false, "")
	add(`{}`, `{"store.autocrane.io/url":"http://repo:8080","data.autocrane.io/m":"m"}`, `{}`, 10, "",
		`{"v":1,"hash":"h","mounts":["autocrane-data"]}`, false, "/data")
	add(`{}`, `{}`, `{"status.autocrane.io/health":"error","autocrane.io/injec":"enabled"}`, 13, "injected", "x", false, "")
	add(`{}`, `{}`, `{}`, 11, "web", "info/2024-01-01T00:00:00Z/ok", false, "")
	f.Fuzz(func(t *testing.T, nsJSON, podJSON, labelsJSON string, slot uint8, name, value string, hostNetwork bool, mount string) {
		nsAnn, podAnn := fuzzMaps(nsJSON, podJSON, slot, name, value)
		labels := map[string]string{}
		_ = json.Unmarshal([]byte(labelsJSON), &labels)
		ns := Namespace{Name: "team", Annotations: nsAnn}
		podSpec := &corev1.PodSpec{HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "app"}}}
		if mount != "" {
			podSpec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "user-volume", MountPath: mount}}
		}
		pod := PodFields{Labels: labels, Annotations: podAnn, Spec: podSpec}
		size := len(nsJSON) + len(podJSON) + len(labelsJSON) + len(name) + len(value) + len(mount)

		var warnings []string
		var errs field.ErrorList
		warnings, errs = ValidatePod(ns, pod)
		func() {
			w2, errs2 := ValidatePod(ns, pod)
			if diff := cmp.Diff(fuzzMessages(errs), fuzzMessages(errs2)); diff != "" {
				t.Fatalf("errors differ between two calls:\n%s", diff)
			}
			if diff := cmp.Diff(warnings, w2); diff != "" {
				t.Fatalf("warnings differ between two calls:\n%s", diff)
			}
		}()

		checkErrors(t, errs, maxFieldFor(ns.Name, nsAnn, podAnn, labels), size)
		seen := map[string]bool{}
		for _, e := range errs {
			if seen[e.Error()] {
				t.Fatalf("duplicate error: %v", e)
			}
			seen[e.Error()] = true
			if !strings.HasPrefix(e.Field, "metadata.") && !strings.HasPrefix(e.Field, "namespace[team].metadata.annotations[") {
				t.Fatalf("error outside the pod's and namespace's metadata: %v", e)
			}
		}
		autocraneKeys := 0
		for _, m := range []map[string]string{podAnn, labels} {
			for k := range m {
				if IsAutoCraneKey(k) {
					autocraneKeys++
				}
			}
		}
		if len(warnings) > autocraneKeys {
			t.Fatalf("%d warnings for %d AutoCrane keys", len(warnings), autocraneKeys)
		}
		for _, w := range warnings {
			if len(w) > 2*maxFieldFor("", podAnn, labels)+256 {
				t.Fatalf("warning of %d bytes", len(w))
			}
		}

		// A hostNetwork pod's IP is the node's: no probe may pass.
		hasProbe := slices.ContainsFunc(slices.Collect(maps.Keys(podAnn)), func(k string) bool { return strings.HasPrefix(k, PrefixProbe) })
		if hostNetwork && hasProbe && len(errs) == 0 {
			t.Fatal("a hostNetwork pod with a probe passed validation")
		}
		if len(errs) > 0 {
			return
		}
		probes, perrs := ParseProbes(podAnn)
		if len(perrs) > 0 {
			t.Fatalf("valid pod whose probes do not parse: %v", perrs)
		}
		for _, pr := range probes {
			if u, err := url.Parse(pr.URL(fuzzPodIPs[0])); err != nil || u.Hostname() != fuzzPodIPs[0] {
				t.Fatalf("valid pod with probe %+v leaving the pod", pr)
			}
		}
		if v, ok := labels[LabelInject]; ok && v != InjectEnabled && v != InjectDisabled {
			t.Fatalf("valid pod with %s=%q", LabelInject, v)
		}
		if v, ok := labels[LabelRole]; ok && v != RoleDataRepository {
			t.Fatalf("valid pod with %s=%q", LabelRole, v)
		}
		p, _ := ParsePod(ns, podAnn)
		checkParsedPod(t, ns, podAnn, p)
		isRepo := labels[LabelRole] == RoleDataRepository
		if (len(p.Sources) > 0 && !isRepo) || (len(p.Deployments) > 0 && isRepo) {
			t.Fatalf("valid pod: repository role %v with %d sources and %d deployments", isRepo, len(p.Sources), len(p.Deployments))
		}
		if len(p.Deployments) > 0 && mount != "" {
			rec, _ := ParseInjected(podAnn[AnnotationInjected])
			if !slices.Contains(rec.Mounts, "user-volume") && !slices.Contains(rec.Containers, "app") &&
				under(p.Store.Location, path.Clean(mount)) {
				t.Fatalf("valid pod whose data location %q overlaps the app's mount %q", p.Store.Location, mount)
			}
		}
	})
}
