// Package archive extracts a data version's tar stream into a directory,
// safely: only directories and regular files, clean relative names, masked
// modes, and caps on bytes, entries and depth. Every write goes through an
// os.Root, so a process that shares the volume and swaps a directory for a
// symlink mid-extraction cannot make it write outside the root.
//
// It imports only the standard library.
package archive
