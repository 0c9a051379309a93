// Package fetch downloads content-addressed blobs from AutoCrane's data
// repository (GET BASE/v1/blobs/sha256:HEX) into a staging directory,
// verifying the sha256 digest while the bytes stream in and resuming an
// interrupted download with a Range request (If-Range with the ETag).
// Every file it writes goes through an os.Root.
//
// It talks HTTP only: it must not import the repository's code.
package fetch
