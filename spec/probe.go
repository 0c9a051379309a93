package spec

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodIPPlaceholder is the only host a probe may name: the pod's own IP,
// filled in by the prober just before each probe.
const PodIPPlaceholder = "POD_IP"

// Probe is watchdog Name of a pod: GET Scheme://<pod IP>:Port<Path>.
type Probe struct {
	Name   string
	Scheme string
	Port   int
	// Path starts with "/" and may carry a query.
	Path string
}

// URL is the probe's URL for a pod whose current IP is podIP.
func (p Probe) URL(podIP string) string {
	return p.Scheme + "://" + net.JoinHostPort(podIP, strconv.Itoa(p.Port)) + p.Path
}

const probeForm = "accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH"

// ParseProbe parses probe.autocrane.io/NAME. The host must be the literal
// POD_IP: any other host, IP (in any notation), localhost, userinfo,
// fragment or control character is rejected, so no annotation can make
// AutoCrane send a request anywhere but to the pod itself.
func ParseProbe(name, v string, p *field.Path) (Probe, *field.Error) {
	if err := validateName(name, p, "watchdog name"); err != nil {
		return Probe{}, err
	}
	if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) {
		return Probe{}, invalid(p, v, "must not contain white space, control or non-ASCII characters; "+probeForm)
	}
	scheme, rest := "http", v
	if s, r, ok := strings.Cut(v, "://"); ok {
		if s != "http" && s != "https" {
			return Probe{}, invalid(p, v, "scheme must be http or https; "+probeForm)
		}
		scheme, rest = s, r
	}
	hostPort, path, hasPath := strings.Cut(rest, "/")
	if !hasPath {
		return Probe{}, invalid(p, v, "must have a path after the port; "+probeForm)
	}
	path = "/" + path
	if strings.ContainsAny(hostPort, "@[]\\") {
		return Probe{}, invalid(p, v, "the host must be POD_IP, without userinfo; "+probeForm)
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return Probe{}, invalid(p, v, "must be POD_IP:PORT followed by a path; "+probeForm)
	}
	if host != PodIPPlaceholder {
		return Probe{}, invalid(p, v, fmt.Sprintf("the host must be the literal POD_IP (the pod's own IP), not %q; %s", shown(host), probeForm))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") || strings.HasPrefix(port, "0") {
		return Probe{}, invalid(p, v, "port must be a number from 1 to 65535; "+probeForm)
	}
	if strings.ContainsAny(path, "#\\") {
		return Probe{}, invalid(p, v, "the path must not contain a fragment (#) or a backslash; "+probeForm)
	}
	// The path must stay a path: a parser must find exactly this host and
	// port in the URL the prober will build.
	u, err := url.Parse("http://" + PodIPPlaceholder + ":" + port + path)
	if err != nil || u.Host != PodIPPlaceholder+":"+port || u.User != nil || u.Opaque != "" {
		return Probe{}, invalid(p, v, "the path is not a valid URL path; "+probeForm)
	}
	return Probe{Name: name, Scheme: scheme, Port: n, Path: path}, nil
}

// ParseProbes parses every probe.autocrane.io/NAME of a pod, sorted by name.
func ParseProbes(annotations map[string]string) ([]Probe, field.ErrorList) {
	var probes []Probe
	var errs field.ErrorList
	for key, v := range annotations {
		name, ok := strings.CutPrefix(key, PrefixProbe)
		if !ok {
			continue
		}
		pr, err := ParseProbe(name, v, AnnotationPath(key))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		probes = append(probes, pr)
	}
	sortBy(probes, func(p Probe) string { return p.Name })
	SortErrors(errs)
	return probes, errs
}
