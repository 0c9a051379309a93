package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// templatePaths says where each kind that makes pods keeps its pod
// template; nil for a Pod, which is its own template. Kinds are matched by
// group, in any version.
var templatePaths = map[schema.GroupKind][]string{
	{Group: "", Kind: "Pod"}:             nil,
	{Group: "apps", Kind: "Deployment"}:  {"spec", "template"},
	{Group: "apps", Kind: "StatefulSet"}: {"spec", "template"},
	{Group: "apps", Kind: "DaemonSet"}:   {"spec", "template"},
	{Group: "apps", Kind: "ReplicaSet"}:  {"spec", "template"},
	{Group: "batch", Kind: "Job"}:        {"spec", "template"},
	{Group: "batch", Kind: "CronJob"}:    {"spec", "jobTemplate", "spec", "template"},
}

var (
	kindList      = schema.GroupKind{Kind: "List"}
	kindNamespace = schema.GroupKind{Kind: "Namespace"}
)

// defaultNamespace is the namespace of a namespaced object that names none.
const defaultNamespace = metav1.NamespaceDefault

// objectHead is what inject reads of every object before it knows its kind.
type objectHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
}

func decodeHead(raw []byte) (objectHead, schema.GroupKind, error) {
	var h objectHead
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return h, schema.GroupKind{}, errors.New("not a Kubernetes object: expected a mapping with apiVersion and kind")
	}
	if err := utiljson.Unmarshal(raw, &h); err != nil {
		return h, schema.GroupKind{}, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if h.APIVersion == "" || h.Kind == "" {
		return h, schema.GroupKind{}, errors.New("not a Kubernetes object: apiVersion and kind must be set")
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		return h, schema.GroupKind{}, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	return h, gv.WithKind(h.Kind).GroupKind(), nil
}

// namespace is the namespace of a namespaced object.
func (h objectHead) namespace() string {
	if h.Metadata.Namespace == "" {
		return defaultNamespace
	}
	return h.Metadata.Namespace
}

// describe names the object for messages: "Deployment default/web".
func (h objectHead) describe() string {
	name := h.Metadata.Name
	switch {
	case name == "" && h.Metadata.GenerateName != "":
		name = h.Metadata.GenerateName + "<generated>"
	case name == "":
		name = "<no name>"
	}
	return h.Kind + " " + h.namespace() + "/" + name
}

// injection is one run of inject over a stream of objects.
type injection struct {
	cfg injector.Config
	// namespaces are the Namespace documents of the input, by name.
	namespaces map[string]spec.Namespace
	// nsFile is --namespace-file; nil when not given.
	nsFile *spec.Namespace
}

// namespaceFor is what a pod in namespace name inherits: the input's
// Namespace document of that name, else --namespace-file, else a namespace
// with injection enabled and no defaults.
func (in *injection) namespaceFor(name string) spec.Namespace {
	if ns, ok := in.namespaces[name]; ok {
		return ns
	}
	if in.nsFile != nil {
		ns := *in.nsFile
		if ns.Name == "" {
			ns.Name = name
		}
		return ns
	}
	return spec.Namespace{Name: name, Labels: map[string]string{spec.LabelInject: spec.InjectEnabled}}
}

// collectNamespaces records the Namespace documents of raw, and of its items
// when it is a List. A later document of the same name wins. Errors about
// what is not an object are left to object.
func (in *injection) collectNamespaces(raw []byte, where string) error {
	_, gk, err := decodeHead(raw)
	if err != nil {
		return nil
	}
	switch gk {
	case kindNamespace:
		ns, err := decodeNamespace(raw)
		if err != nil {
			return &documentError{where: where, err: err}
		}
		in.namespaces[ns.Name] = ns
	case kindList:
		items, err := listItems(raw)
		if err != nil {
			return nil
		}
		var errs []error
		for i, item := range items {
			errs = append(errs, in.collectNamespaces(item, itemWhere(where, i)))
		}
		return errors.Join(errs...)
	}
	return nil
}

func decodeNamespace(raw []byte) (spec.Namespace, error) {
	var ns corev1.Namespace
	if err := utiljson.Unmarshal(raw, &ns); err != nil {
		return spec.Namespace{}, fmt.Errorf("decode Namespace: %w", err)
	}
	return spec.Namespace{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}, nil
}

// object returns raw with its pod template injected, raw itself for a kind
// without one, and for a List the list with each item handled so.
func (in *injection) object(raw []byte, where string) ([]byte, error) {
	h, gk, err := decodeHead(raw)
	if err != nil {
		return nil, &documentError{where: where, err: err}
	}
	if gk == kindList {
		return in.list(raw, where)
	}
	path, ok := templatePaths[gk]
	if !ok || slices.Contains(spec.SystemNamespaces(), h.namespace()) {
		return raw, nil
	}
	fail := func(err error) error {
		return &documentError{where: where, object: h.describe(), prefix: strings.Join(path, "."), err: err}
	}
	tmpl, err := getRaw(raw, path)
	if err != nil {
		return nil, fail(err)
	}
	out, outcome, err := InjectPodJSON(tmpl, in.namespaceFor(h.namespace()), in.cfg)
	if err != nil {
		return nil, fail(err)
	}
	if outcome != injector.Injected {
		return raw, nil
	}
	doc, err := setRaw(raw, path, out)
	if err != nil {
		return nil, fail(err)
	}
	return doc, nil
}

// list handles each item of a List (v1), reporting the errors of all.
func (in *injection) list(raw []byte, where string) ([]byte, error) {
	items, err := listItems(raw)
	if err != nil {
		return nil, &documentError{where: where, object: "List", err: err}
	}
	var errs []error
	for i, item := range items {
		out, err := in.object(item, itemWhere(where, i))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items[i] = out
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if items == nil {
		return raw, nil
	}
	itemsJSON, err := json.Marshal(items)
	if err != nil {
		return nil, &documentError{where: where, object: "List", err: err}
	}
	return setRaw(raw, []string{"items"}, itemsJSON)
}

func listItems(raw []byte) ([]json.RawMessage, error) {
	itemsJSON, err := getRaw(raw, []string{"items"})
	if err != nil || itemsJSON == nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(itemsJSON, &items); err != nil {
		return nil, errors.New("items is not a list")
	}
	return items, nil
}

func itemWhere(where string, i int) string { return fmt.Sprintf("%s: items[%d]", where, i) }

// documentError is an error in one document of the input. Its message
// names the document and the object, and, for keys the injector rejects,
// gives one line per bad key with the field path from the object's root.
type documentError struct {
	// where is "FILE: document N", with ": items[I]" inside a List.
	where string
	// object is "KIND NAMESPACE/NAME"; empty when unknown.
	object string
	// prefix is the field path of the pod template ("spec.template"); empty
	// for a Pod.
	prefix string
	err    error
}

func (e *documentError) Error() string {
	lead := e.where
	if e.object != "" {
		lead += ": " + e.object
	}
	var inv *injector.InvalidError
	if errors.As(e.err, &inv) {
		lines := make([]string, len(inv.Errs))
		for i, fe := range inv.Errs {
			c := *fe
			c.Field = prefixField(e.prefix, fe.Field)
			lines[i] = lead + ": " + c.Error()
		}
		return strings.Join(lines, "\n")
	}
	if e.prefix != "" {
		lead += ": " + e.prefix
	}
	return lead + ": " + e.err.Error()
}

func (e *documentError) Unwrap() error { return e.err }

// prefixField turns a field path of the pod template into one from the
// object's root. Paths into the namespace (namespace[NAME]...) stay.
func prefixField(prefix, f string) string {
	if prefix == "" {
		return f
	}
	first, _, _ := strings.Cut(f, ".")
	first, _, _ = strings.Cut(first, "[")
	if first != "metadata" && first != "spec" {
		return f
	}
	return prefix + "." + f
}
