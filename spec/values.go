package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultLocation is where data appears when store.autocrane.io/location is
// not set.
const DefaultLocation = "/data"

// MaxSeconds bounds the *-seconds keys: one day.
const MaxSeconds = 86400

// maxShown is how much of a bad value an error message repeats.
const maxShown = 128

// shown cuts a value for an error message, so a huge annotation cannot make
// a huge message.
func shown(v string) string {
	if len(v) <= maxShown {
		return v
	}
	cut := maxShown
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", v[:cut], len(v))
}

func invalid(p *field.Path, v, detail string) *field.Error {
	return field.Invalid(p, shown(v), detail)
}

// SidecarMode is how the datadeployer is injected.
type SidecarMode string

// The sidecar modes.
const (
	// SidecarNative is one initContainers entry with restartPolicy: Always
	// (Kubernetes 1.29 and newer), so Jobs still complete.
	SidecarNative SidecarMode = "native"
	// SidecarClassic is an init container plus a regular sidecar container.
	SidecarClassic SidecarMode = "classic"
)

// invalidRedacted is invalid for values that may hold a credential: the
// userinfo, query and fragment of a URL are replaced by "REDACTED".
func invalidRedacted(p *field.Path, v, detail string) *field.Error {
	return invalid(p, RedactURL(v), detail)
}

// RedactURL hides what may be a credential in a URL: its userinfo, query
// and fragment. A value that does not parse is cut after the scheme.
func RedactURL(v string) string {
	if !strings.ContainsAny(v, "@?#") {
		return v
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		if scheme, _, ok := strings.Cut(v, "://"); ok {
			return scheme + "://REDACTED"
		}
		return "REDACTED"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "REDACTED", false
	}
	if u.Fragment != "" {
		u.Fragment = "REDACTED"
	}
	return u.String()
}

// ParseSidecarMode parses inject.autocrane.io/sidecar-mode.
func ParseSidecarMode(v string, p *field.Path) (SidecarMode, *field.Error) {
	switch SidecarMode(v) {
	case SidecarNative, SidecarClassic:
		return SidecarMode(v), nil
	}
	return "", field.NotSupported(p, shown(v), []string{string(SidecarNative), string(SidecarClassic)})
}

// ParseStoreURL parses store.autocrane.io/url: http or https, a host, an
// optional valid port and path, and no userinfo, query or fragment (a
// credential in the URL would end up in every pod spec and log).
func ParseStoreURL(v string, p *field.Path) (string, *field.Error) {
	const form = "accepted form: http(s)://host[:port][/path]"
	// A rejected URL may carry a credential; the message repeats it
	// redacted, since it ends up in events and audit logs.
	invalid := func(p *field.Path, v, detail string) *field.Error { return invalidRedacted(p, v, detail) }
	if strings.ContainsFunc(v, unicode.IsSpace) || strings.ContainsFunc(v, unicode.IsControl) {
		return "", invalid(p, v, "must not contain white space or control characters; "+form)
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", invalid(p, v, "not a URL; "+form)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", invalid(p, v, "scheme must be http or https; "+form)
	case u.User != nil:
		return "", invalid(p, v, "must not contain userinfo (credentials); "+form)
	case u.Hostname() == "":
		return "", invalid(p, v, "must name a host; "+form)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#"):
		return "", invalid(p, v, "must not contain a query or fragment; "+form)
	case u.Opaque != "":
		return "", invalid(p, v, "must be an absolute URL; "+form)
	}
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", invalid(p, v, "port must be a number from 1 to 65535; "+form)
		}
	}
	return v, nil
}

// reservedLocations are paths data must never be mounted over or under.
var reservedLocations = []string{"/proc", "/dev", "/sys", "/etc", "/var/run/secrets/kubernetes.io", "/run/secrets/kubernetes.io"}

// ParseLocation parses store.autocrane.io/location: a clean absolute path
// that is not / and not under a system directory.
func ParseLocation(v string, p *field.Path) (string, *field.Error) {
	switch {
	case !strings.HasPrefix(v, "/"):
		return "", invalid(p, v, "must be an absolute path, e.g. "+DefaultLocation)
	case v == "/":
		return "", invalid(p, v, "must not be /, which would hide the container's root file system")
	case path.Clean(v) != v:
		return "", invalid(p, v, fmt.Sprintf("must be a clean path (%s)", shown(path.Clean(v))))
	case strings.ContainsAny(v, ":\x00\r\n"):
		return "", invalid(p, v, "must not contain ':' or control characters")
	}
	for _, r := range reservedLocations {
		if PathsOverlap(v, r) {
			return "", invalid(p, v, "must not be "+r+" or overlap it")
		}
	}
	return v, nil
}

// PathsOverlap reports whether a is b, or one lies under the other.
func PathsOverlap(a, b string) bool {
	if a == b {
		return true
	}
	return strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/") || strings.HasPrefix(b, strings.TrimSuffix(a, "/")+"/")
}

// ParseSeconds parses a whole number of seconds from 0 to MaxSeconds.
func ParseSeconds(v string, p *field.Path) (int32, *field.Error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || n > MaxSeconds {
		return 0, invalid(p, v, fmt.Sprintf("must be whole seconds from 0 to %d", MaxSeconds))
	}
	return int32(n), nil
}

func validateName(name string, p *field.Path, what string) *field.Error {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return invalid(p, name, what+" must be a DNS-1123 label: "+strings.Join(msgs, "; "))
	}
	return nil
}

// SourceKind is how a data repository fetches a source.
type SourceKind string

// The source kinds.
const (
	SourceGit  SourceKind = "git"
	SourceHTTP SourceKind = "http"
	SourceDir  SourceKind = "dir"
)

// Source is a source declared on the data repository's pod.
type Source struct {
	Name     string
	Kind     SourceKind
	Location string
}

// ParseSource parses KIND:LOCATION.
func ParseSource(name, v string, p *field.Path) (Source, *field.Error) {
	kind, loc, _ := strings.Cut(v, ":")
	const form = "accepted form: git:URL[#ref], http:http(s)://host/file or dir:/path"
	if loc == "" {
		return Source{}, invalid(p, v, "source location is empty; "+form)
	}
	switch SourceKind(kind) {
	case SourceGit:
		if strings.HasPrefix(loc, "-") || strings.HasPrefix(loc, "ext::") {
			return Source{}, invalid(p, v, "git location must be a URL, not an option or ext:: transport; "+form)
		}
		// Annotations are readable by anyone who can read the pod: a secret
		// belongs in the repository's credentials directory.
		if u, err := url.Parse(loc); err == nil && u.User != nil {
			if _, hasPassword := u.User.Password(); hasPassword {
				return Source{}, invalid(p, kind+":"+RedactURL(loc), "git URL must not carry a password or token; give credentials to the data repository from a Secret (--credentials-dir); "+form)
			}
		}
	case SourceHTTP:
		u, err := url.Parse(loc)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return Source{}, invalid(p, v, "http location must be an http(s) URL without userinfo; "+form)
		}
	case SourceDir:
		if !strings.HasPrefix(loc, "/") || path.Clean(loc) != loc {
			return Source{}, invalid(p, v, "dir location must be a clean absolute path; "+form)
		}
	default:
		return Source{}, invalid(p, v, fmt.Sprintf("unknown source kind %q; %s", shown(kind), form))
	}
	if strings.ContainsAny(loc, "\x00\r\n") {
		return Source{}, invalid(p, v, "must not contain control characters")
	}
	return Source{Name: name, Kind: SourceKind(kind), Location: loc}, nil
}

// decodeStrictJSON decodes exactly one JSON value, with no unknown fields
// and nothing after it.
func decodeStrictJSON(v string, out any) error {
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// Bounds of a resources override: far above any real value, far below what
// would make parsing costly (quantity parsing is quadratic in its digits).
const (
	maxResourcesLength = 1024
	maxQuantityLength  = 32
)

var maxQuantity = resource.MustParse("1Ei")

// resourceNames are the resources an injected container's override may set.
var resourceNames = []string{string(corev1.ResourceCPU), string(corev1.ResourceMemory), string(corev1.ResourceEphemeralStorage)}

// ParseResources parses a resources.autocrane.io/COMPONENT override: JSON
// with "requests" and "limits" maps of cpu, memory and ephemeral-storage.
func ParseResources(v string, p *field.Path) (corev1.ResourceRequirements, field.ErrorList) {
	const form = `accepted form: {"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"64Mi"}}`
	var raw struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	}
	if len(v) > maxResourcesLength {
		return corev1.ResourceRequirements{}, field.ErrorList{invalid(p, v, fmt.Sprintf("longer than %d bytes; %s", maxResourcesLength, form))}
	}
	if err := decodeStrictJSON(v, &raw); err != nil {
		msg := "not valid JSON: " + shown(err.Error())
		return corev1.ResourceRequirements{}, field.ErrorList{invalid(p, v, msg+"; "+form)}
	}
	var errs field.ErrorList
	rr := corev1.ResourceRequirements{}
	rr.Requests, errs = parseResourceList(raw.Requests, v, p, "requests", errs)
	rr.Limits, errs = parseResourceList(raw.Limits, v, p, "limits", errs)
	return rr, errs
}

func parseResourceList(m map[string]string, v string, p *field.Path, what string, errs field.ErrorList) (corev1.ResourceList, field.ErrorList) {
	if len(m) == 0 {
		return nil, errs
	}
	out := corev1.ResourceList{}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(resourceNames, name) {
			errs = append(errs, invalid(p, v, fmt.Sprintf("%s.%s: unsupported resource; supported: %s", what, shown(name), strings.Join(resourceNames, ", "))))
			continue
		}
		if len(m[name]) > maxQuantityLength {
			errs = append(errs, invalid(p, v, fmt.Sprintf("%s.%s: longer than %d bytes", what, name, maxQuantityLength)))
			continue
		}
		q, err := resource.ParseQuantity(m[name])
		if err == nil && (q.Sign() < 0 || q.Cmp(maxQuantity) > 0) {
			errs = append(errs, invalid(p, v, fmt.Sprintf("%s.%s: %q must be from 0 to 1Ei", what, name, m[name])))
			continue
		}
		if err != nil {
			errs = append(errs, invalid(p, v, fmt.Sprintf("%s.%s: %q is not a quantity such as 100m or 64Mi", what, name, shown(m[name]))))
			continue
		}
		out[corev1.ResourceName(name)] = q
	}
	return out, errs
}

// ValidateLocationAgainstMounts rejects a data location that is, contains or
// lies under a volume mount of an app container.
func ValidateLocationAgainstMounts(location string, p *field.Path, containers []corev1.Container, skip func(corev1.VolumeMount) bool) field.ErrorList {
	var errs field.ErrorList
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			if skip != nil && skip(m) {
				continue
			}
			if PathsOverlap(location, path.Clean(m.MountPath)) {
				errs = append(errs, invalid(p, location, fmt.Sprintf("overlaps volume mount %s (volume %s) of container %s", m.MountPath, m.Name, c.Name)))
			}
		}
	}
	return errs
}
