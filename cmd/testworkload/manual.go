package main

import "strings"

// manual is what --help prints, and what docs/testworkload.md repeats.
func manual() string {
	return strings.TrimLeft(`
testworkload: a small HTTP service whose watchdog can be made to fail, for
tests, demos and trials of AutoCrane.

USAGE
    testworkload [flags]

ENDPOINTS
    GET  /ping           200 "pong".
    GET  /watchdog       200 {"level":"info","message":"ok"} while healthy,
                         200 {"level":"warning","message":"..."} while warning,
                         500 {"level":"error","message":"failing for ..."}
                         while failing. AutoCrane's prober reads a 200 JSON
                         answer with level warning as a warning.
    POST /fail[?for=D]   Fail /watchdog for D, a duration such as 30s or 5m
                         (more than 0s, at most 168h), or until POST /recover
                         when for= is not given.
    POST /warn[?for=D]   Answer /watchdog with level warning, likewise.
    POST /recover        End a failure or a warning now.
    GET  /files/PATH     With --serve-files only: the file PATH under that
                         directory, read-only (directories are listed), to
                         show what the app sees of its data.
    GET  /metrics        Prometheus metrics (see METRICS).

    Each change replaces the one before. The answer to a change is JSON:
    {"mode":"failing","since":"...","until":"...","message":"..."}. A bad
    for= is answered 400 with the reason and changes nothing. Any other
    method on these paths is answered 405: only POST changes the state.
    GET also answers HEAD.

FLAGS
    Every flag can also be set with the environment variable named after it;
    the flag wins. A misspelled flag is an error, while a misspelled
    variable is silently ignored, so prefer flags.

    --listen <address>, $TESTWORKLOAD_LISTEN
            Where to serve HTTP: HOST:PORT, or :PORT for every address. When
            neither the flag nor $TESTWORKLOAD_LISTEN is set and $PORT is,
            ":$PORT" is used ($PORT must then be a number from 1 to 65535).
            Port 0 picks a free port; the "serving" log line names it.
            Default ":8080".

    --shutdown-timeout <duration>, $TESTWORKLOAD_SHUTDOWN_TIMEOUT
            On SIGTERM or SIGINT, stop accepting connections and let the
            requests in flight finish for at most this long, then exit 0.
            Must be more than 0s. Default "10s".

    --serve-files <directory>, $TESTWORKLOAD_SERVE_FILES
            Serve this directory read-only at GET /files/, for demos and
            tests to show what the app sees, such as the data a datadeployer
            put in place. Symbolic links are followed only while they stay
            inside the directory. Default "" (not served: /files/ is 404).

    --redirect-watchdog-to <url>, $TESTWORKLOAD_REDIRECT_WATCHDOG_TO
            TEST-ONLY. Answer every GET /watchdog with 302 Found and this
            absolute http:// or https:// URL as Location, whatever the
            state, to check that a prober does not follow redirects. Other
            paths are unchanged. Excludes --watchdog-body-bytes. Default ""
            (off).

    --watchdog-body-bytes <bytes>, $TESTWORKLOAD_WATCHDOG_BODY_BYTES
            TEST-ONLY. Pad /watchdog's JSON answer with spaces to this many
            bytes, with a matching Content-Length, to check that a prober
            reads only a bounded prefix. The padding is streamed, so any
            size costs no memory. 0, or a size smaller than the answer
            itself, means no padding. Must not be negative. Default 0.

LOGGING FLAGS
    Logs are JSON lines on stderr (controller-runtime's zap logger). These
    flags have no environment variable.

    --zap-devel
            Development mode: console encoder, level debug, stack traces from
            warnings on. Default false (JSON, level info, stack traces from
            errors on).

    --zap-encoder <json|console>
            The log encoding. Default json (console with --zap-devel).

    --zap-log-level <level>
            debug, info, error, panic, or a whole number more than 0 for
            more verbose debug levels. Default info (debug with --zap-devel).

    --zap-stacktrace-level <level>
            info, error or panic: the level from which stack traces are
            logged. Default error (warn with --zap-devel).

    --zap-time-encoding <encoding>
            epoch, millis, nano, iso8601, rfc3339 or rfc3339nano. Default
            rfc3339 (controller-runtime's own help text says epoch, but its
            logger uses rfc3339).

METRICS
    testworkload_http_requests_total{path,code}
            Requests answered, by path (/ping, /watchdog, /fail, /warn,
            /recover, /metrics, or "other" for any other path) and HTTP
            status code.
    testworkload_watchdog_mode{mode}
            1 for the mode /watchdog answers in now (ok, warning or
            failing), 0 for the others; read at each scrape, so an expired
            for= shows at once.
    The Go runtime's and the process's standard metrics are served too.

EXIT CODES
    0 after --help or a clean shutdown, 1 when it cannot listen or serve,
    2 for a usage error (bad flag, bad environment variable, bad value).
`, "\n")
}
