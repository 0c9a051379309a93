// Package fetch checks the data repository's sources and, when one changed,
// writes its content as a canonical tar (package canonical).
//
// There is one Fetcher per kind: Git (the git CLI, hardened: a clean
// environment, hooks, filters, submodules and redirects off, only the
// allowed transports), HTTP (conditional GETs, no cross-host redirects,
// bounded headers and body) and Dir (a local directory, compared by the
// digest of its canonical tar). Each Fetch first does the cheapest check
// that can tell "unchanged" (ls-remote, a conditional GET, a hashing walk)
// and only then downloads.
//
// Credentials come only from files (a Secret volume), read at each check so
// a rotated Secret applies without a restart. They never appear on a
// command line, and errors are redacted before they leave the package.
//
// fetch imports canonical, store (for Origin), spec and the standard
// library; it knows nothing of HTTP serving or metrics.
package fetch
