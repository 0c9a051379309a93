package datadeployer

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/autocrane/autocrane/spec"
)

// ErrNoRequest: the pod has no request.data.autocrane.io/NAME annotation
// (yet); the controller, or the injector at admission, writes it.
var ErrNoRequest = errors.New("no request annotation yet")

// MaxDeployments bounds --deployments.
const MaxDeployments = 64

// RequestFor reads the version the controller wants deployment name to
// hold. When the pod also says which source feeds the deployment
// (data.autocrane.io/NAME), the request must be for that source.
func RequestFor(annotations map[string]string, name string) (spec.DataRequest, error) {
	key := spec.PrefixDataRequest + name
	v, ok := annotations[key]
	if !ok {
		return spec.DataRequest{}, fmt.Errorf("%s: %w", key, ErrNoRequest)
	}
	req, err := spec.ParseDataRequest(v)
	if err != nil {
		return spec.DataRequest{}, fmt.Errorf("%s: %w", key, err)
	}
	if src, ok := annotations[spec.PrefixData+name]; ok && src != req.Source {
		return spec.DataRequest{}, fmt.Errorf("%s asks for source %q, but %s%s says the deployment is fed from %q",
			key, req.Source, spec.PrefixData, name, spec.SanitizeMessage(src))
	}
	return req, nil
}

// ParseDeployments parses --deployments: a comma-separated list of
// distinct data deployment names (DNS-1123 labels).
func ParseDeployments(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("--deployments is empty: name at least one data deployment")
	}
	parts := strings.Split(v, ",")
	if len(parts) > MaxDeployments {
		return nil, fmt.Errorf("--deployments lists %d names, more than %d", len(parts), MaxDeployments)
	}
	seen := map[string]bool{}
	names := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if msgs := validation.IsDNS1123Label(p); len(msgs) > 0 {
			return nil, fmt.Errorf("--deployments: %q is not a DNS-1123 label: %s", spec.SanitizeMessage(p), strings.Join(msgs, "; "))
		}
		if seen[p] {
			return nil, fmt.Errorf("--deployments: %q is listed twice", p)
		}
		seen[p] = true
		names = append(names, p)
	}
	return names, nil
}

// linkPrefix is how every symlink the datadeployer publishes begins.
const linkPrefix = versionsDir + "/"

// LinkTarget is the relative target of LOCATION/NAME for blob sha256:hex.
func LinkTarget(hex string) string { return linkPrefix + hex }

// ParseLinkTarget returns the blob hex of a target LinkTarget made, and
// false for any other target (a link someone else made).
func ParseLinkTarget(target string) (string, bool) {
	hex, ok := strings.CutPrefix(target, linkPrefix)
	if !ok || !isHex64(hex) {
		return "", false
	}
	return hex, true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// hexOf is a validated digest's hex part.
func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }
