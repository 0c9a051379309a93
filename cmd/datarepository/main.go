// Command datarepository is AutoCrane's data repository: it follows the
// sources declared on its pod and serves their versions. The manual is
// docs/datarepository.md; --help prints the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/sidecars/datarepository"
)

const usage = `Usage: datarepository [flags]

Follows the sources declared as data.autocrane.io/SOURCE: KIND:LOCATION
annotations (--annotations-file), in a sources file or with --source, and
serves their versions over HTTP:

  GET  /v1/sources               sources and their versions
  GET  /v1/sources/NAME          one source
  POST /v1/sources/NAME/sync     check now (202)
  PUT  /v1/sources/NAME/pins     {"versions":["ID",...]} replaces the pins
  GET  /v1/blobs/sha256:HEX      a version's canonical tar (Range, ETag)
  GET  /healthz, /readyz, /metrics

KIND is git (URL[#branch-or-tag]), http (an http(s) file or .tar/.tar.gz/.tgz)
or dir (a local directory). SIGTERM stops it gracefully. Manual:
docs/datarepository.md. Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run parses the flags and runs the repository until ctx ends. It returns
// the exit code: 0 after a clean stop or --help, 1 on failure, 2 on a
// usage error.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("datarepository", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts datarepository.Options
	opts.BindFlags(fs)
	var zopts zap.Options
	zopts.BindFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "datarepository: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log := zap.New(zap.UseFlagOptions(&zopts), zap.WriteTo(stderr))
	opts.Logger = log
	srv, err := datarepository.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "datarepository: %v\n", err)
		return 2
	}
	if err := srv.Run(ctx); err != nil {
		log.Error(err, "data repository failed")
		return 1
	}
	return 0
}
