// Package store keeps the data repository's state on disk under its root:
// content-addressed blobs (ROOT/blobs/sha256/HEX) and one JSON metadata file
// per source (ROOT/sources/NAME.json) with its versions, pins and the origin
// state that makes the next check cheap.
//
// Every file is written to a temporary file in its final directory, synced,
// renamed into place, and the directory synced, so a crash leaves either the
// old or the new file, never a torn one. Blob commits and garbage collection
// run under one lock, so a blob is never deleted between its rename and the
// metadata that references it.
//
// A root belongs to one process at a time (an flock on ROOT/lock).
//
// store imports only the standard library, logr, k8s.io/utils/clock and
// spec (for ids and digests).
package store
