package main

import "strings"

// manual is what --help prints, and what docs/watchdoghealthz.md repeats.
func manual() string {
	return strings.TrimLeft(`
watchdoghealthz: AutoCrane's canary sidecar. Its /healthz answers the pod's
readiness probe with 200 only once the pod's watchdogs have been error-free
for --min-ready-seconds, so that a rollout stops at the first pods whose
watchdogs fail. It reads the pod's annotations from the downward API file
and makes no Kubernetes API call.

USAGE
    watchdoghealthz [flags]

    The injector adds it to every pod that sets
    healthz.autocrane.io/min-ready-seconds, with a readiness probe on
    GET /healthz and these arguments:
        --annotations-file=/etc/autocrane/podinfo/annotations
        --min-ready-seconds=N --listen=:9781
        [--always-healthy-after-seconds=M]

ENDPOINTS
    GET /healthz   200 when healthy, 503 when not, with a short JSON body:
                   {"healthy":false,"reason":"...","errorFreeFor":"3s"}
                   errorFreeFor is there only while the error-free clock
                   runs, in whole seconds.
    GET /readyz    200 "ok" once the annotations file has been read, 503
                   before: the sidecar's own readiness.
    GET /metrics   Prometheus metrics (see METRICS).

HOW /healthz DECIDES
    The first of these that applies is the answer (and the metric's
    result label):
    always_healthy  200 --always-healthy-after-seconds is given and that
                        long has passed since the process started, whatever
                        the watchdogs say and whether or not the file was
                        read.
    not_read        503 The annotations file was not read yet.
    error           503 A status.autocrane.io/NAME has level error.
    waiting         503 The error-free clock never ran and a declared
                        watchdog (a valid probe.autocrane.io/NAME) has no
                        valid status yet.
    warming_up      503 Error-free for less than --min-ready-seconds.
    healthy         200 Error-free for at least --min-ready-seconds.

THE ERROR-FREE CLOCK
    The pod is blocked while a watchdog is in error, and, until the clock
    has run once, while a declared watchdog has no valid status. Once the
    clock has run, a watchdog without a status no longer blocks: only
    errors do.

    If the first read of the file finds nothing blocking, the clock starts
    at process start. When a read finds a block over, the clock starts at
    the latest status timestamp of the watchdogs that blocked, when that
    timestamp is after the last read that saw the block and not in the
    future; otherwise at that read. So a recovery counts from when the
    prober saw it, but never from before the sidecar last saw the error.

    A status that does not parse as LEVEL/TIMESTAMP/MESSAGE counts as no
    status: unknown, not error. Warning is not an error. The status of an
    undeclared watchdog (one posted by hand) counts. The health label's key,
    status.autocrane.io/health, is ignored unless a watchdog named health
    is declared. A probe that does not parse declares nothing.

    The kubelet refreshes the file some time after the annotations change
    (its sync period plus cache, about a minute); the sidecar sees a
    refresh at once through inotify, or within --poll-interval. An error
    that begins and ends between two refreshes is not seen.

FLAGS
    Every flag can also be set with the environment variable named after it;
    the flag wins. A misspelled flag is an error, while a misspelled
    variable is silently ignored, so prefer flags.

    --annotations-file <path>, $WATCHDOGHEALTHZ_ANNOTATIONS_FILE
            The downward API file with the pod's annotations, one
            KEY="VALUE" line each. It is watched (inotify on its directory,
            as the kubelet swaps a symlink) and re-read every
            --poll-interval; a read that fails keeps the last good
            annotations. Must not be empty. Default
            "/etc/autocrane/podinfo/annotations".

    --min-ready-seconds <seconds>, $WATCHDOGHEALTHZ_MIN_READY_SECONDS
            How long the error-free clock must have run before /healthz
            answers 200. Whole seconds from 0 to 86400. Default 0 (ready as
            soon as nothing blocks).

    --always-healthy-after-seconds <seconds>,
            $WATCHDOGHEALTHZ_ALWAYS_HEALTHY_AFTER_SECONDS
            After this long since the process started, /healthz always
            answers 200, so that a finished canary cannot hurt availability.
            Counted from process start: a restarted container counts again.
            Whole seconds from 0 to 86400, not less than
            --min-ready-seconds. Default: not set (gate forever).

    --listen <address>, $WATCHDOGHEALTHZ_LISTEN
            Where to serve HTTP: HOST:PORT, or :PORT for every address.
            Port 0 picks a free port; the "serving" log line names it.
            Default ":9781".

    --poll-interval <duration>, $WATCHDOGHEALTHZ_POLL_INTERVAL
            How often the annotations file is re-read when no change
            notification arrives: the fallback for file systems without
            inotify. From 10ms to 1h. Default "5s".

    --shutdown-timeout <duration>, $WATCHDOGHEALTHZ_SHUTDOWN_TIMEOUT
            On SIGTERM or SIGINT, stop accepting connections and let the
            requests in flight finish for at most this long, then exit 0.
            Must be more than 0s. Default "5s".

LOGGING FLAGS
    Logs are JSON lines on stderr (controller-runtime's zap logger): one
    line when the pod's watchdogs change what blocks the clock, and one
    when /healthz's result changes. These flags have no environment
    variable.

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
    watchdoghealthz_healthz_answers_total{result}
            Answers of /healthz by result: always_healthy, not_read, error,
            waiting, warming_up or healthy.
    watchdoghealthz_annotations_updates_total
            Reads of the annotations file that found them changed, the
            first read included.
    watchdoghealthz_error_free_seconds
            How long the error-free clock has run; 0 while blocked.
    The Go runtime's and the process's standard metrics are served too.

EXIT CODES
    0 after --help or a clean shutdown, 1 when it cannot listen or serve,
    2 for a usage error (bad flag, bad environment variable, bad value).
`, "\n")
}
