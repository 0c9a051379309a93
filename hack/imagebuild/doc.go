// Command imagebuild builds AutoCrane's container image without a container
// engine: static binaries of every program under ./cmd, one layer, no shell,
// run as 65532:65532, reproducible. It also builds the pause image that the
// test cluster (hack/cluster) gives containerd as its sandbox image. Run it
// with `make images`; `imagebuild --help` documents every flag.
//
// The image assembly lives in the oci subpackage; this command only finds
// and compiles the programs.
package main
