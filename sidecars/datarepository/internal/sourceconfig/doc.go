// Package sourceconfig reads which sources the data repository follows:
// data.autocrane.io/SOURCE annotations from the pod's downward API
// annotations file, a YAML or JSON sources file, and --source flags. Watcher
// tells when the files may have changed (fsnotify on their directories,
// since the kubelet swaps a "..data" symlink, plus a poll as a fallback).
//
// Every value is parsed with spec.ParseSource. A bad declaration is
// reported by name, so the caller can keep the previous valid declaration
// of that source instead of dropping its history over a typo.
//
// sourceconfig imports spec, fsnotify, logr, k8s.io/utils/clock and
// sigs.k8s.io/yaml.
package sourceconfig
