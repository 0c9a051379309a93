package datadeployer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/sidecars/datadeployer/archive"
	"github.com/autocrane/autocrane/spec"
)

// Mode is how the datadeployer runs in the pod (the injector's --mode).
type Mode string

// The modes.
const (
	// ModeInit syncs every deployment once, then exits: 0 when all hold
	// their requested version, non-zero after --init-timeout.
	ModeInit Mode = "init"
	// ModeSidecar runs forever, following the requests.
	ModeSidecar Mode = "sidecar"
	// ModeNativeSidecar is ModeSidecar whose /readyz (the startup probe)
	// passes only after the first sync, so the app starts after its data.
	ModeNativeSidecar Mode = "native-sidecar"
)

// ParseMode parses --mode.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeInit, ModeSidecar, ModeNativeSidecar:
		return m, nil
	}
	return "", fmt.Errorf("--mode %q is not one of init, sidecar, native-sidecar", spec.SanitizeMessage(s))
}

// Defaults of Options.
const (
	DefaultInitTimeout             = 10 * time.Minute
	DefaultRetryMin                = time.Second
	DefaultRetryMax                = 5 * time.Minute
	DefaultDownloadIdleTimeout     = time.Minute
	DefaultWatchdogFailureGrace    = 10 * time.Minute
	DefaultWatchdogFailureAttempts = 3
	DefaultNotifyTimeout           = 5 * time.Second
)

// Options configure a Deployer. Zero fields take the default named on them.
type Options struct {
	// Mode decides when Run returns and what /readyz means. Default sidecar.
	Mode Mode
	// RepositoryURL is the data repository (store.autocrane.io/url). Required.
	RepositoryURL string
	// TokenFile, when set, holds the repository's bearer token.
	TokenFile string
	// Location is where data appears (store.autocrane.io/location), the
	// shared volume's mount point. Required, absolute.
	Location string
	// Deployments are the pod's data deployment names. At least one.
	Deployments []string
	// AnnotationsFile is the downward API annotations file Run watches.
	AnnotationsFile string
	// AnnotationsPollInterval is the fallback re-read interval of the
	// annotations file. Default podinfo.DefaultPollInterval.
	AnnotationsPollInterval time.Duration
	// Listen is the address of the HTTP endpoints; empty serves none.
	Listen string
	// Listener, when set, is used instead of Listen (tests pass one on
	// 127.0.0.1:0). Run closes it.
	Listener net.Listener
	// Limits cap what one version may hold. Default archive.DefaultLimits.
	Limits archive.Limits
	// InitTimeout is how long init mode waits. Default 10m.
	InitTimeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff between failed
	// syncs (jittered). Defaults 1s and 5m.
	RetryMin, RetryMax time.Duration
	// DownloadIdleTimeout aborts a download that receives nothing for this
	// long. Default 1m.
	DownloadIdleTimeout time.Duration
	// WatchdogFailureGrace and WatchdogFailureAttempts: /watchdog reports
	// error once a deployment's sync has failed this many times in a row
	// and for at least this long. Defaults 10m and 3.
	WatchdogFailureGrace    time.Duration
	WatchdogFailureAttempts int
	// Notify says whom to tell after a swap. Default nobody.
	Notify NotifyOptions
	// Log receives the logs. Default discards.
	Log logr.Logger
	// Clock is the time source of every timing decision. Default real.
	Clock clock.Clock
	// HTTPClient talks to the repository. Default a client with connection
	// timeouts that follows redirects as Go does (dropping the token on a
	// redirect to another domain).
	HTTPClient *http.Client
	// Registry receives the metrics. Default a new registry.
	Registry *prometheus.Registry

	// random returns a number in [0, 1) for jitter; tests fix it.
	random func() float64
}

// NotifyOptions: after a new version goes live, the datadeployer can POST
// to the app (URL) and/or send it a signal (by pid file or process name).
type NotifyOptions struct {
	// URL is an http:// URL on 127.0.0.1, localhost or [::1].
	URL string
	// Signal is SIGHUP, SIGUSR1 or SIGUSR2; PIDFile or Process says to whom.
	Signal  string
	PIDFile string
	// Process is a process name (as in /proc/PID/comm); the pod needs
	// shareProcessNamespace: true.
	Process string
	// Timeout bounds one notification. Default 5s.
	Timeout time.Duration
	// ProcDir is where processes are listed. Default /proc.
	ProcDir string
}

func (o *Options) setDefaults() {
	if o.Mode == "" {
		o.Mode = ModeSidecar
	}
	if o.Limits == (archive.Limits{}) {
		o.Limits = archive.DefaultLimits()
	}
	if o.InitTimeout == 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.RetryMin == 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax == 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.DownloadIdleTimeout == 0 {
		o.DownloadIdleTimeout = DefaultDownloadIdleTimeout
	}
	if o.WatchdogFailureGrace == 0 {
		o.WatchdogFailureGrace = DefaultWatchdogFailureGrace
	}
	if o.WatchdogFailureAttempts == 0 {
		o.WatchdogFailureAttempts = DefaultWatchdogFailureAttempts
	}
	if o.Notify.Timeout == 0 {
		o.Notify.Timeout = DefaultNotifyTimeout
	}
	if o.Notify.ProcDir == "" {
		o.Notify.ProcDir = "/proc"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.random == nil {
		o.random = rand.Float64
	}
}

// ErrInvalidOptions marks errors in Options (a bad flag, for the command).
var ErrInvalidOptions = errors.New("invalid options")

// validate checks the options after defaults are set.
func (o *Options) validate() error {
	var errs []error
	if _, err := ParseMode(string(o.Mode)); err != nil {
		errs = append(errs, err)
	}
	if _, ferr := spec.ParseStoreURL(o.RepositoryURL, nil); ferr != nil {
		errs = append(errs, fmt.Errorf("--repository-url: %s", ferr.Detail))
	}
	if !filepath.IsAbs(o.Location) || filepath.Clean(o.Location) != o.Location {
		errs = append(errs, fmt.Errorf("--location %q must be a clean absolute path", o.Location))
	}
	if len(o.Deployments) == 0 {
		errs = append(errs, errors.New("--deployments: name at least one data deployment"))
	}
	if err := o.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"--init-timeout", o.InitTimeout}, {"--retry-min", o.RetryMin}, {"--retry-max", o.RetryMax},
		{"--download-idle-timeout", o.DownloadIdleTimeout}, {"--watchdog-failure-grace", o.WatchdogFailureGrace},
		{"--notify-timeout", o.Notify.Timeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	if o.RetryMax < o.RetryMin {
		errs = append(errs, fmt.Errorf("--retry-max (%s) must not be less than --retry-min (%s)", o.RetryMax, o.RetryMin))
	}
	if o.WatchdogFailureAttempts < 1 {
		errs = append(errs, errors.New("--watchdog-failure-attempts must be at least 1"))
	}
	if err := o.Notify.validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}
