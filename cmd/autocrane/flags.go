package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/autocrane/autocrane/cli"
	"github.com/autocrane/autocrane/internal/envflag"
)

// errUsage marks errors in the command line itself; it is the CLI's, so
// every subcommand's usage errors exit 2.
var errUsage = cli.ErrUsage

func isUsage(err error) bool { return errors.Is(err, errUsage) }
func isHelp(err error) bool  { return errors.Is(err, flag.ErrHelp) }

// envPrefix starts the environment variable of every flag: --webhook-port
// falls back to $AUTOCRANE_WEBHOOK_PORT.
const envPrefix = "AUTOCRANE_"

// envName is the environment variable of a flag.
func envName(flagName string) string { return envflag.Name(envPrefix, flagName) }

// newFlagSet returns a subcommand's flag set, which prints usage and then
// the flags' defaults to stderr on --help or a bad flag, and the Set that
// declares its flags with environment fallbacks.
func newFlagSet(name, usage string, stderr io.Writer) (*flag.FlagSet, *envflag.Set) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, envflag.New(fs, envPrefix, nil)
}

// parseArgs parses a subcommand's command line, which takes only flags.
// Bad environment values come first and stop it, even before --help; they,
// bad flags and stray arguments are usage errors.
func parseArgs(fs *flag.FlagSet, e *envflag.Set, args []string) error {
	if err := e.Err(); err != nil {
		return fmt.Errorf("%w: %w", err, errUsage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	return nil
}
