// Package datarepository is AutoCrane's data repository: it follows the
// sources declared on its own pod (git repositories, http(s) files and
// archives, local directories), turns each new state of a source into an
// immutable, content-addressed version (a canonical tar, so equal content
// has an equal sha256 digest), keeps the newest versions plus pinned ones,
// and serves them over HTTP to the rollout controller and the pods'
// datadeployers.
//
// Server is the repository (New, then Run or Serve). Client is the small
// Go client that the controller (Sources, Source, SetPins, Sync) and the
// deployer (BlobURL, OpenBlob) use; SourceStatus and Version are the JSON
// types of the API. docs/datarepository.md is the manual: flags, API,
// layout on disk, security.
//
// The work is split into internal packages: canonical (the canonical tar),
// store (blobs and metadata on disk, retention, GC), fetch (the git, http
// and dir sources) and sourceconfig (reading the declarations). This
// package wires them to HTTP, metrics and one goroutine per source.
//
// datarepository may import spec; it must not import controller-runtime or
// client-go: the repository needs no Kubernetes API credentials.
package datarepository
