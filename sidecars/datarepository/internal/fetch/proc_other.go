//go:build !unix

package fetch

import "os/exec"

// killProcessGroup leaves exec's default (kill the process) where process
// groups are missing; the repository runs on Linux.
func killProcessGroup(*exec.Cmd) {}
