package datadeployer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/autocrane/autocrane/spec"
)

func FuzzRequestFor(f *testing.F) {
	digest := "sha256:" + strings.Repeat("0f", 32)
	f.Add("models/v1/"+digest, "models", true)
	f.Add("models/v1/"+digest, "other", true)
	f.Add("models/v1/"+digest+"/extra", "", false)
	f.Add("models//"+digest, "", false)
	f.Add("", "", false)
	f.Fuzz(func(t *testing.T, value, source string, withSource bool) {
		a := map[string]string{spec.PrefixDataRequest + "models": value}
		if withSource {
			a[spec.PrefixData+"models"] = source
		}
		req, err := RequestFor(a, "models")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if req.String() != value {
			t.Fatalf("RequestFor(%q) = %q, which does not round-trip", value, req.String())
		}
		if withSource && req.Source != source {
			t.Fatalf("accepted source %q, the pod says %q", req.Source, source)
		}
		if spec.ValidateDigest(req.Digest) != nil || !isHex64(hexOf(req.Digest)) {
			t.Fatalf("accepted digest %q", req.Digest)
		}
	})
}

func FuzzParseDeployments(f *testing.F) {
	for _, s := range []string{"models", "a,b", "a, b", "a,a", ",", "A", "a..b", strings.Repeat("x,", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		names, err := ParseDeployments(v)
		if err != nil {
			return
		}
		if len(names) == 0 || len(names) > MaxDeployments {
			t.Fatalf("%q gave %d names", v, len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			if len(validation.IsDNS1123Label(n)) > 0 || seen[n] || strings.HasPrefix(n, ".") {
				t.Fatalf("%q gave bad or repeated name %q", v, n)
			}
			seen[n] = true
		}
		again, err := ParseDeployments(strings.Join(names, ","))
		if err != nil || !slices.Equal(again, names) {
			t.Fatalf("%q does not round-trip: %v %v", v, again, err)
		}
	})
}

func FuzzParseLinkTarget(f *testing.F) {
	f.Add(LinkTarget(strings.Repeat("a", 64)))
	f.Add(".autocrane/versions/../../etc")
	f.Add("/abs/.autocrane/versions/" + strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, target string) {
		h, ok := ParseLinkTarget(target)
		if !ok {
			return
		}
		if LinkTarget(h) != target || !isHex64(h) {
			t.Fatalf("ParseLinkTarget(%q) = %q", target, h)
		}
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add(`{"ready":true,"deployments":[{"name":"models","state":"live","version":"v1","since":"2026-01-01T00:00:00Z"}]}`)
	f.Add(`{"deployments":[{"state":"bogus"}]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		s, err := DecodeStatus(strings.NewReader(body))
		if err != nil {
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeStatus(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("re-encoded status does not decode: %v", err)
		}
		for _, d := range again.Deployments {
			_ = d.DataStatus().String() // must not panic
		}
	})
}
