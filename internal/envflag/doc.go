// Package envflag declares command-line flags whose defaults come from
// environment variables, the convention every AutoCrane command follows:
// flag --webhook-port of a command with prefix AUTOCRANE_ falls back to
// $AUTOCRANE_WEBHOOK_PORT.
//
// Flags win over the environment: a misspelled flag is fatal, while a
// misspelled variable would be silently ignored. A bad value in the
// environment is an error like a bad flag, collected and reported together
// by Set.Err or Set.Parse; the value a variable sets becomes the flag's
// default, so --help shows it. Each flag's usage text ends with
// " ($VARIABLE)".
//
// Value types that belong to one command (sizes, optional seconds) stay in
// that command as flag.Value implementations declared with Set.Var.
//
// The package wraps the standard library's flag package only: it must not
// import anything of AutoCrane's, so every command can use it.
package envflag
