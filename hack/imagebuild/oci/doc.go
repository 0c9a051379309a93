// Package oci assembles minimal, reproducible container images from static
// binaries with github.com/google/go-containerregistry: no base image, no
// shell, one layer with the files, /etc/passwd and /etc/group for the
// non-root user, fixed timestamps. It writes docker/OCI tarballs (what
// `ctr images import` and `kind load image-archive` read) and pushes to
// registries.
//
// It is a build tool's library: it imports nothing of AutoCrane.
package oci
