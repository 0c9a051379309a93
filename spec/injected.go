package spec

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// InjectedVersion is the version of the autocrane.io/injected format.
const InjectedVersion = 1

// Injected is the value of autocrane.io/injected: what the injector added,
// so that the next pass can strip exactly that and apply again.
type Injected struct {
	// Version of this format.
	Version int `json:"v"`
	// Hash of everything injected; it changes when the config does.
	Hash string `json:"hash"`
	// InitContainers, Containers and Volumes the injector added, by name.
	InitContainers []string `json:"initContainers,omitempty"`
	Containers     []string `json:"containers,omitempty"`
	Volumes        []string `json:"volumes,omitempty"`
	// Mounts are the volumes the injector mounted into app containers.
	Mounts []string `json:"mounts,omitempty"`
	// Annotations the injector set besides this one.
	Annotations []string `json:"annotations,omitempty"`
}

// String encodes the record as compact JSON.
func (i Injected) String() string {
	b, err := json.Marshal(i)
	if err != nil {
		// A struct of strings always marshals.
		panic(fmt.Sprintf("marshal injected record: %v", err))
	}
	return string(b)
}

// ParseInjected parses autocrane.io/injected. An empty value is the zero
// record.
func ParseInjected(v string) (Injected, *field.Error) {
	var i Injected
	if v == "" {
		return i, nil
	}
	p := AnnotationPath(AnnotationInjected)
	if err := decodeStrictJSON(v, &i); err != nil {
		return Injected{}, invalid(p, v, "not a record written by AutoCrane's injector; remove the annotation to inject afresh")
	}
	if i.Version != InjectedVersion {
		return Injected{}, invalid(p, v, fmt.Sprintf("unsupported record version %d (this injector writes %d)", i.Version, InjectedVersion))
	}
	return i, nil
}
