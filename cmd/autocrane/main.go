// Command autocrane is AutoCrane's manager (webhooks and controllers) and
// its command-line tool. Run "autocrane help" for the subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/autocrane/autocrane/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `autocrane: ships container services safely on Kubernetes.

Usage:
  autocrane manager [flags]      run the admission webhooks (and later the controllers)
  autocrane inject -f FILE|-     inject offline, like the mutating webhook would
  autocrane doctor [flags]       check a live install and say what is wrong
  autocrane watchdog get POD     show a pod's watchdogs and health
  autocrane watchdog post POD --name N --level L [--message M]
                                 record watchdog N's level on a pod
  autocrane version              print the version
  autocrane help [COMMAND]       print help

Run "autocrane COMMAND --help" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the process exit code: 0 on
// success, 1 when the command failed, 2 for a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "manager":
		err = runManager(ctx, args[1:], stdout, stderr)
	case "inject":
		err = cli.Inject(ctx, args[1:], stdin, stdout, stderr)
	case "watchdog":
		err = cli.Watchdog(ctx, args[1:], stdout, stderr)
	case "doctor":
		err = runDoctor(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version)
	case "help", "-h", "--help":
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "autocrane: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if isHelp(err) {
			return 0
		}
		fmt.Fprintf(stderr, "autocrane %s: %v\n", args[0], err)
		if isUsage(err) {
			return 2
		}
		return 1
	}
	return 0
}
