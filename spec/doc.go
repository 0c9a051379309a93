// Package spec is AutoCrane's user-facing contract in code: every label and
// annotation key, its typed parsing and its validation.
//
// Everything else in AutoCrane reads annotations only through this package.
// Parsers return every problem at once as a field.ErrorList whose paths name
// the key (metadata.annotations[store.autocrane.io/url]) and whose messages
// give the value, the reason and the accepted form.
//
// spec imports only k8s.io/api and k8s.io/apimachinery, so that the sidecars
// can use it without pulling in controller-runtime or client-go.
package spec
