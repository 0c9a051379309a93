// Package canonical turns a tree of directories and regular files into the
// data repository's canonical tar, so that the same content always has the
// same sha256 digest, whatever its source, mtimes, owners or modes.
//
// The canonical tar is uncompressed. Its entries are sorted by path (byte
// order), every parent directory has its own entry, mtimes are Unix 0,
// uid and gid are 0 with no user or group names, directories are 0755 and
// files 0644, or 0755 when any execute bit was set at the source. Headers
// are USTAR, or PAX when a name does not fit USTAR.
//
// Names from a source are checked with CleanPath: relative, no "." or ".."
// components, valid UTF-8, no NUL. Only directories and regular files are
// accepted; ReadTar refuses links, devices and FIFOs with an error that
// names the entry.
//
// canonical imports only the standard library.
package canonical
