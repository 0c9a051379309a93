package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/internal/envflag"
	"github.com/autocrane/autocrane/sidecars/datadeployer"
	"github.com/autocrane/autocrane/sidecars/datadeployer/archive"
	"github.com/autocrane/autocrane/sidecars/podinfo"
	"github.com/autocrane/autocrane/spec"
)

const usage = `Usage: datadeployer [flags]

Keeps each data deployment NAME of this pod on the version the controller
requests in the pod annotation request.data.autocrane.io/NAME
(SOURCE/VERSION/sha256:HEX), read from the downward API file
--annotations-file. It downloads the version's tar blob from
--repository-url (GET /v1/blobs/sha256:HEX, resuming interrupted
downloads, verifying the digest), extracts it under
LOCATION/.autocrane/versions/HEX/, and publishes it by renaming a symlink
over LOCATION/NAME: readers see the old version or the new one, never a
mix or nothing. The previous version stays on disk, so a rollback needs no
download. It needs no Kubernetes API credentials.

Modes (--mode):
  init            sync once; exit 0 when every deployment holds its
                  requested version, 1 after --init-timeout
  sidecar         follow the requests until SIGTERM
  native-sidecar  like sidecar; /readyz (the startup probe) passes only
                  after the first sync, so the app starts after its data

HTTP (--listen): GET /status (JSON), /watchdog (200 info or warning, 500
error once a sync keeps failing), /readyz, /healthz, /metrics.

Exit codes: 0 success, 1 failure, 2 usage error.

Every flag can also be set through the environment variable shown after
it; the flag wins. Flags:
`

// flags are the command line.
type flags struct {
	mode, repositoryURL, tokenFile, location, deployments, annotationsFile, listen string
	annotationsPoll                                                                time.Duration
	maxBytes                                                                       int64
	maxEntries, maxDepth                                                           int
	initTimeout, retryMin, retryMax, idleTimeout, watchdogGrace                    time.Duration
	watchdogAttempts                                                               int
	notifyURL, notifySignal, notifyPIDFile, notifyProcess                          string
	notifyTimeout                                                                  time.Duration
	zap                                                                            zap.Options
}

func newFlags(stderr io.Writer) (*flag.FlagSet, *flags, *envflag.Set) {
	fs := flag.NewFlagSet("datadeployer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flags{maxBytes: archive.DefaultMaxBytes} // --max-bytes is a Var: its default is the value it starts with
	e := envflag.New(fs, envPrefix, nil)
	e.String(&f.mode, "mode", string(datadeployer.ModeSidecar), "init, sidecar or native-sidecar (see Modes above)")
	e.String(&f.repositoryURL, "repository-url", "", "the data repository, http(s)://host[:port][/path] (store.autocrane.io/url); required")
	e.String(&f.tokenFile, "token-file", "", "file holding a bearer token for the repository, re-read before every download; empty sends none")
	e.String(&f.location, "location", spec.DefaultLocation, "the shared data volume's mount point (store.autocrane.io/location); deployment NAME appears at LOCATION/NAME")
	e.String(&f.deployments, "deployments", "", "comma-separated data deployment names (DNS-1123 labels, at most "+strconv.Itoa(datadeployer.MaxDeployments)+"); required")
	e.String(&f.annotationsFile, "annotations-file", injector.AnnotationsFile, "the pod's annotations, as the downward API writes them")
	e.Duration(&f.annotationsPoll, "annotations-poll-interval", podinfo.DefaultPollInterval, "how often the annotations file is re-read when no change notification arrives")
	e.String(&f.listen, "listen", fmt.Sprintf(":%d", injector.DefaultDataDeployerPort), "address of the HTTP endpoints; empty serves none")
	e.Var((*bytesValue)(&f.maxBytes), "max-bytes", "most bytes one version's files may hold, a `quantity` such as 4Gi; the download may exceed it by 4 KiB of tar headers per allowed entry plus 1 MiB")
	e.Int(&f.maxEntries, "max-entries", archive.DefaultMaxEntries, "most files and directories one version may hold")
	e.Int(&f.maxDepth, "max-depth", archive.DefaultMaxDepth, "most path components of a name in a version")
	e.Duration(&f.initTimeout, "init-timeout", datadeployer.DefaultInitTimeout, "init mode: how long to wait for every deployment to hold its requested version before exiting 1")
	e.Duration(&f.retryMin, "retry-min", datadeployer.DefaultRetryMin, "first delay after a failed sync; doubled per failure in a row, jittered (half fixed, half random)")
	e.Duration(&f.retryMax, "retry-max", datadeployer.DefaultRetryMax, "longest delay between failed syncs")
	e.Duration(&f.idleTimeout, "download-idle-timeout", datadeployer.DefaultDownloadIdleTimeout, "abort (and later resume) a download that receives nothing for this long")
	e.Duration(&f.watchdogGrace, "watchdog-failure-grace", datadeployer.DefaultWatchdogFailureGrace, "/watchdog turns error once a deployment's syncs have kept failing this long (and --watchdog-failure-attempts times); before that it says warning")
	e.Int(&f.watchdogAttempts, "watchdog-failure-attempts", datadeployer.DefaultWatchdogFailureAttempts, "failed syncs in a row before /watchdog can turn error")
	e.String(&f.notifyURL, "notify-url", "", "after a swap, POST a JSON event here; only http:// to 127.0.0.1, localhost or [::1] (the app in this pod); empty: no POST")
	e.String(&f.notifySignal, "notify-signal", "", "after a swap, send this signal (SIGHUP, SIGUSR1 or SIGUSR2) to the process named by --notify-pid-file or --notify-process")
	e.String(&f.notifyPIDFile, "notify-pid-file", "", "file holding the app's process id, for --notify-signal (needs shareProcessNamespace: true and the same user id)")
	e.String(&f.notifyProcess, "notify-process", "", "name of the app's process(es) as in /proc/PID/comm, for --notify-signal (needs shareProcessNamespace: true and the same user id)")
	e.Duration(&f.notifyTimeout, "notify-timeout", datadeployer.DefaultNotifyTimeout, "bound on one --notify-url request")
	f.zap.BindFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs, f, e
}
