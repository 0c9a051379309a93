package spec

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pod is what a pod asks of the injector, parsed from its annotations merged
// over its namespace's defaults.
type Pod struct {
	// Store says where the data repository is and where data appears.
	Store Store
	// Deployments are the pod's data deployments, sorted by name.
	Deployments []DataDeployment
	// Sources are the sources a data repository pod declares, sorted by name.
	Sources []Source
	// Healthz is set when the watchdoghealthz canary sidecar is wanted.
	Healthz *Healthz
	// SidecarMode is how to inject the datadeployer; empty means the
	// injector's default.
	SidecarMode SidecarMode
	// Resources overrides the injected containers' resources, per component.
	Resources map[Component]corev1.ResourceRequirements
	// ResourcePaths is where each override came from, for error messages.
	ResourcePaths map[Component]*field.Path
	// LocationPath is where Store.Location came from, for error messages.
	LocationPath *field.Path
}

// Store says where the data repository is and where data appears.
type Store struct {
	// URL is the data repository's base URL; empty when not set.
	URL string
	// Location is the absolute path where data appears in app containers.
	Location string
	// TokenSecret names the Secret holding the repository's bearer token
	// (key "token"); empty when the repository needs none.
	TokenSecret string
}

// DataDeployment is data deployment Name of a pod, fed from Source.
type DataDeployment struct {
	Name   string
	Source string
}

// Healthz configures the watchdoghealthz canary sidecar.
type Healthz struct {
	// MinReadySeconds is how long the pod's watchdogs must be error-free
	// before it may become ready.
	MinReadySeconds int32
	// AlwaysHealthyAfterSeconds, when set, ends the gating after this long.
	AlwaysHealthyAfterSeconds *int32
}

// Annotation paths, built once.
var (
	podAnnotationsPath = field.NewPath("metadata", "annotations")
)

// AnnotationPath is the field path of a pod annotation key.
func AnnotationPath(key string) *field.Path { return podAnnotationsPath.Key(key) }

// NamespaceAnnotationPath is the field path of an annotation on namespace ns.
func NamespaceAnnotationPath(ns, key string) *field.Path {
	return field.NewPath("namespace").Key(ns).Child("metadata", "annotations").Key(key)
}

// Namespace is what a pod inherits from its namespace.
type Namespace struct {
	Name        string
	Labels      map[string]string
	Annotations map[string]string
}

// lookup finds a key on the pod, or, for keys with namespace defaults, on
// the namespace. It returns the value and the path where it was found.
type lookup struct {
	ns  Namespace
	pod map[string]string
}

func (l lookup) get(key string, namespaceDefault bool) (string, *field.Path, bool) {
	if v, ok := l.pod[key]; ok {
		return v, AnnotationPath(key), true
	}
	if namespaceDefault {
		if v, ok := l.ns.Annotations[key]; ok {
			return v, NamespaceAnnotationPath(l.ns.Name, key), true
		}
	}
	return "", AnnotationPath(key), false
}

// ParsePod parses every key the injector reads from a pod's annotations,
// with its namespace's annotations as defaults for the keys that have them.
// It returns every problem found, not only the first: the list grows with
// the input, so a caller that answers with it applies LimitErrors first.
func ParsePod(ns Namespace, podAnnotations map[string]string) (Pod, field.ErrorList) {
	l := lookup{ns: ns, pod: podAnnotations}
	var p Pod
	var errs field.ErrorList

	v, path, hasURL := l.get(KeyStoreURL, true)
	if hasURL {
		u, err := ParseStoreURL(v, path)
		errs = appendErr(errs, err)
		p.Store.URL = u
	}
	p.Store.Location = DefaultLocation
	v, path, ok := l.get(KeyStoreLocation, true)
	p.LocationPath = path
	if ok {
		loc, err := ParseLocation(v, path)
		errs = appendErr(errs, err)
		if err == nil {
			p.Store.Location = loc
		}
	}

	if v, path, ok := l.get(KeyStoreTokenSecret, true); ok {
		if msgs := validation.IsDNS1123Subdomain(v); len(msgs) > 0 {
			errs = append(errs, invalid(path, v, "must be a Secret name: "+strings.Join(msgs, "; ")))
		} else {
			p.Store.TokenSecret = v
		}
	}

	d, s, dErrs := parseData(podAnnotations)
	p.Deployments, p.Sources = d, s
	errs = append(errs, dErrs...)
	if len(p.Deployments) > 0 && !hasURL {
		errs = append(errs, field.Required(AnnotationPath(KeyStoreURL),
			"data deployments need the data repository's URL: set it on the pod or as a default on its namespace"))
	}

	h, hErrs := parseHealthz(podAnnotations)
	p.Healthz = h
	errs = append(errs, hErrs...)

	if v, path, ok := l.get(KeySidecarMode, true); ok {
		m, err := ParseSidecarMode(v, path)
		errs = appendErr(errs, err)
		p.SidecarMode = m
	}

	for _, c := range Components {
		key := PrefixResources + string(c)
		if v, path, ok := l.get(key, true); ok {
			rr, rErrs := ParseResources(v, path)
			errs = append(errs, rErrs...)
			if len(rErrs) == 0 {
				if p.Resources == nil {
					p.Resources = map[Component]corev1.ResourceRequirements{}
					p.ResourcePaths = map[Component]*field.Path{}
				}
				p.Resources[c] = rr
				p.ResourcePaths[c] = path
			}
		}
	}
	errs = append(errs, unknownResourceKeys(l)...)
	SortErrors(errs)
	return p, errs
}

// parseData splits data.autocrane.io/NAME keys into data deployments (the
// value is a source name) and source declarations (KIND:LOCATION).
func parseData(annotations map[string]string) ([]DataDeployment, []Source, field.ErrorList) {
	var deployments []DataDeployment
	var sources []Source
	var errs field.ErrorList
	for key, v := range annotations {
		name, ok := strings.CutPrefix(key, PrefixData)
		if !ok {
			continue
		}
		path := AnnotationPath(key)
		if err := validateName(name, path, "data deployment or source name"); err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.Contains(v, ":") {
			src, err := ParseSource(name, v, path)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			sources = append(sources, src)
			continue
		}
		if err := validateName(v, path, "source name"); err != nil {
			errs = append(errs, err)
			continue
		}
		deployments = append(deployments, DataDeployment{Name: name, Source: v})
	}
	sort.Slice(deployments, func(i, j int) bool { return deployments[i].Name < deployments[j].Name })
	sort.Slice(sources, func(i, j int) bool { return sources[i].Name < sources[j].Name })
	if len(deployments) > 0 && len(sources) > 0 {
		errs = append(errs, field.Forbidden(podAnnotationsPath.Key(PrefixData+"*"),
			"a pod either declares sources (KIND:LOCATION, on the data repository's pod) or consumes data deployments (source names), not both"))
	}
	return deployments, sources, errs
}

func parseHealthz(annotations map[string]string) (*Healthz, field.ErrorList) {
	var errs field.ErrorList
	minV, hasMin := annotations[KeyMinReadySeconds]
	alwaysV, hasAlways := annotations[KeyAlwaysHealthyAfterSeconds]
	if !hasMin && !hasAlways {
		return nil, nil
	}
	if !hasMin {
		return nil, field.ErrorList{field.Required(AnnotationPath(KeyMinReadySeconds),
			KeyAlwaysHealthyAfterSeconds+" only applies to the canary sidecar, which "+KeyMinReadySeconds+" turns on")}
	}
	h := &Healthz{}
	minS, err := ParseSeconds(minV, AnnotationPath(KeyMinReadySeconds))
	errs = appendErr(errs, err)
	h.MinReadySeconds = minS
	if hasAlways {
		path := AnnotationPath(KeyAlwaysHealthyAfterSeconds)
		a, err := ParseSeconds(alwaysV, path)
		errs = appendErr(errs, err)
		if err == nil {
			if len(errs) == 0 && a < minS {
				errs = append(errs, field.Invalid(path, shown(alwaysV),
					"must not be less than "+KeyMinReadySeconds+", or the canary would never gate"))
			}
			h.AlwaysHealthyAfterSeconds = &a
		}
	}
	return h, errs
}

// unknownResourceKeys rejects resources.autocrane.io/X for an X that is not
// an injected component: a typo would otherwise be silently ignored.
func unknownResourceKeys(l lookup) field.ErrorList {
	var errs field.ErrorList
	check := func(m map[string]string, path func(string) *field.Path) {
		for key := range m {
			c, ok := strings.CutPrefix(key, PrefixResources)
			if !ok || isComponent(c) {
				continue
			}
			errs = append(errs, field.NotSupported(path(key), shown(c), componentNames()))
		}
	}
	check(l.pod, AnnotationPath)
	check(l.ns.Annotations, func(k string) *field.Path { return NamespaceAnnotationPath(l.ns.Name, k) })
	return errs
}

func isComponent(s string) bool { return slices.Contains(Components, Component(s)) }

func componentNames() []string {
	out := make([]string, len(Components))
	for i, c := range Components {
		out[i] = string(c)
	}
	return out
}

func appendErr(errs field.ErrorList, err *field.Error) field.ErrorList {
	if err == nil {
		return errs
	}
	return append(errs, err)
}

// SortErrors orders errors by field path, so messages are stable.
func SortErrors(errs field.ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
}

// MaxErrors is how many problems one answer lists; the rest are counted.
// An unbounded list would make the answer (and joining it) grow with the
// input: thousands of bad keys would cost seconds per request.
const MaxErrors = 20

// LimitErrors keeps the first MaxErrors errors and counts the others in one
// last error. Apply it once, where an answer is built (ValidatePod, the
// injector's Mutate), not to a list that is still growing.
func LimitErrors(errs field.ErrorList) field.ErrorList {
	if len(errs) <= MaxErrors {
		return errs
	}
	more := len(errs) - MaxErrors
	out := slices.Clone(errs[:MaxErrors])
	return append(out, field.Forbidden(field.NewPath("metadata", "annotations"),
		fmt.Sprintf("and %d more problems not listed; fix the ones above and apply again", more)))
}
