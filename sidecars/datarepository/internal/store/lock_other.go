//go:build !unix

package store

// lockRoot does nothing where flock is missing: the repository runs on
// Linux, and this keeps the package building elsewhere.
func lockRoot(string) (func() error, error) { return func() error { return nil }, nil }
