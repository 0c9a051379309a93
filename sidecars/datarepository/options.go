package datarepository

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/clock"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/fetch"
)

// Defaults, named so that --help, the docs and the tests agree.
const (
	DefaultListen             = ":9790"
	DefaultRoot               = "/var/lib/autocrane/repository"
	DefaultPollInterval       = time.Minute
	DefaultSyncTimeout        = 10 * time.Minute
	DefaultErrorBackoff       = 10 * time.Second
	DefaultMaxErrorBackoff    = 10 * time.Minute
	DefaultConfigPollInterval = 30 * time.Second
	DefaultKeep               = 5
	DefaultMaxBodyBytes       = fetch.DefaultMaxBodyBytes
	DefaultMaxVersionBytes    = 4 << 30
	DefaultMaxEntries         = 1_000_000
	DefaultShutdownTimeout    = 30 * time.Second
	// AllowInsecureAll in AllowInsecure allows every source.
	AllowInsecureAll = "*"
)

// Options configure a Server. Zero fields take the defaults above, except
// where a field says otherwise.
type Options struct {
	// Listen is the API's address (Run only). Default ":9790".
	Listen string
	// Root holds blobs, metadata and git repositories. Default
	// /var/lib/autocrane/repository.
	Root string
	// AnnotationsFile is the pod's downward API annotations file, from
	// which data.autocrane.io/SOURCE declarations are read and re-read.
	AnnotationsFile string
	// SourcesFile is a YAML or JSON map of source names to KIND:LOCATION,
	// re-read when it changes.
	SourcesFile string
	// Sources are NAME=KIND:LOCATION declarations (--source). They win over
	// both files.
	Sources []string
	// CredentialsDir holds DIR/SOURCE/{username,password,token,
	// ssh-privatekey,known_hosts}. Empty: no credentials.
	CredentialsDir string
	// TokenFile, when set, holds the bearer token every API call except
	// /healthz and /readyz must carry. Re-read when it changes.
	TokenFile string
	// AllowInsecure names the sources that may use plaintext or local
	// transports (file://, git://, http://); "*" allows all.
	AllowInsecure []string
	// PollInterval is how often each source is checked (±10% jitter).
	// Default 1m.
	PollInterval time.Duration
	// SyncTimeout bounds one check, download and packing included; git is
	// killed past it. Default 10m.
	SyncTimeout time.Duration
	// ErrorBackoff is the wait after a first failure, doubled after each
	// further one up to MaxErrorBackoff. Defaults 10s and 10m.
	ErrorBackoff, MaxErrorBackoff time.Duration
	// ConfigPollInterval is how often the sources files are re-read even
	// without a change notification. Default 30s.
	ConfigPollInterval time.Duration
	// Keep is how many of each source's newest versions are kept besides
	// pinned ones. Default 5.
	Keep int
	// MaxBodyBytes bounds an http source's download. Default 1 GiB.
	MaxBodyBytes int64
	// MaxVersionBytes bounds a version's canonical tar (unpacked size).
	// Default 4 GiB.
	MaxVersionBytes int64
	// MaxEntries bounds a version's files and directories. Default 1,000,000.
	MaxEntries int
	// GitPath is the git binary. Default "git" from $PATH.
	GitPath string
	// ShutdownTimeout bounds the wait for requests in flight on shutdown.
	// Default 30s.
	ShutdownTimeout time.Duration

	// Logger receives the server's logs. Default: discard.
	Logger logr.Logger
	// Registry receives the metrics served at /metrics. Nil: a new one.
	Registry *prometheus.Registry
	// Clock drives polls, backoff and version times. Nil: the real clock.
	Clock clock.WithTicker
	// Transport carries http sources' requests. Nil: fetch.NewTransport().
	Transport http.RoundTripper

	// jitter spreads a delay; tests replace it. Nil: ±10% at random.
	jitter func(time.Duration) time.Duration
}

func (o *Options) setDefaults() {
	setDefault(&o.Listen, DefaultListen)
	setDefault(&o.Root, DefaultRoot)
	setDefault(&o.PollInterval, DefaultPollInterval)
	setDefault(&o.SyncTimeout, DefaultSyncTimeout)
	setDefault(&o.ErrorBackoff, DefaultErrorBackoff)
	setDefault(&o.MaxErrorBackoff, DefaultMaxErrorBackoff)
	setDefault(&o.ConfigPollInterval, DefaultConfigPollInterval)
	setDefault(&o.Keep, DefaultKeep)
	setDefault(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&o.MaxVersionBytes, DefaultMaxVersionBytes)
	setDefault(&o.MaxEntries, DefaultMaxEntries)
	setDefault(&o.GitPath, "git")
	setDefault(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Transport == nil {
		o.Transport = fetch.NewTransport()
	}
	if o.jitter == nil {
		o.jitter = jitter
	}
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

func (o *Options) validate() error {
	var errs []error
	positive := map[string]time.Duration{
		"--poll-interval": o.PollInterval, "--sync-timeout": o.SyncTimeout, "--error-backoff": o.ErrorBackoff,
		"--max-error-backoff": o.MaxErrorBackoff, "--config-poll-interval": o.ConfigPollInterval,
	}
	for name, d := range positive {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, not %s", name, d))
		}
	}
	if o.MaxErrorBackoff < o.ErrorBackoff {
		errs = append(errs, fmt.Errorf("--max-error-backoff (%s) must not be less than --error-backoff (%s)", o.MaxErrorBackoff, o.ErrorBackoff))
	}
	if o.Keep < 1 {
		errs = append(errs, fmt.Errorf("--keep must be at least 1, not %d", o.Keep))
	}
	if o.MaxBodyBytes < 0 || o.MaxVersionBytes < 0 || o.MaxEntries < 0 {
		errs = append(errs, errors.New("--max-body-bytes, --max-version-bytes and --max-entries must be positive"))
	}
	for _, name := range o.AllowInsecure {
		if name != AllowInsecureAll && len(validation.IsDNS1123Label(name)) > 0 {
			errs = append(errs, fmt.Errorf("--allow-insecure %q: not a source name (or *)", name))
		}
	}
	if o.AnnotationsFile == "" && o.SourcesFile == "" && len(o.Sources) == 0 {
		errs = append(errs, errors.New("no sources: set --annotations-file, --sources-file or --source"))
	}
	return errors.Join(errs...)
}

func (o *Options) insecureAllowed(name string) bool {
	for _, n := range o.AllowInsecure {
		if n == name || n == AllowInsecureAll {
			return true
		}
	}
	return false
}

// listFlag is a repeatable flag; with split, each value may also be a
// comma-separated list.
type listFlag struct {
	values *[]string
	split  bool
}

func (l listFlag) String() string {
	if l.values == nil {
		return ""
	}
	return strings.Join(*l.values, ",")
}

func (l listFlag) Set(v string) error {
	if !l.split {
		*l.values = append(*l.values, v)
		return nil
	}
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.values = append(*l.values, part)
		}
	}
	return nil
}

// BindFlags declares the flags that fill o, with the defaults above shown
// in --help. Usage holds the manual around them.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", DefaultListen, "address the HTTP API listens on")
	fs.StringVar(&o.Root, "root", DefaultRoot, "directory of blobs, metadata and git repositories; one process per root (locked)")
	fs.StringVar(&o.AnnotationsFile, "annotations-file", "", "downward API file of this pod's annotations; data.autocrane.io/SOURCE: KIND:LOCATION declares a source; re-read on change")
	fs.StringVar(&o.SourcesFile, "sources-file", "", "YAML or JSON file mapping source names to KIND:LOCATION; re-read on change; wins over --annotations-file")
	fs.Var(listFlag{values: &o.Sources}, "source", "NAME=KIND:LOCATION, repeatable; wins over both files")
	fs.StringVar(&o.CredentialsDir, "credentials-dir", "", "directory with a subdirectory per source holding username+password, token, ssh-privatekey, known_hosts (a Secret volume); empty: none")
	fs.StringVar(&o.TokenFile, "token-file", "", "file holding the bearer token the API requires (all but /healthz and /readyz); empty: no token")
	fs.Var(listFlag{values: &o.AllowInsecure, split: true}, "allow-insecure", "source names (comma-separated, repeatable; * for all) that may use file://, git:// and http://")
	fs.DurationVar(&o.PollInterval, "poll-interval", DefaultPollInterval, "how often each source is checked, ±10% jitter")
	fs.DurationVar(&o.SyncTimeout, "sync-timeout", DefaultSyncTimeout, "bound of one check with its download and packing; git is killed past it")
	fs.DurationVar(&o.ErrorBackoff, "error-backoff", DefaultErrorBackoff, "wait after a source's first failed check, doubled per further failure")
	fs.DurationVar(&o.MaxErrorBackoff, "max-error-backoff", DefaultMaxErrorBackoff, "longest wait between failed checks")
	fs.DurationVar(&o.ConfigPollInterval, "config-poll-interval", DefaultConfigPollInterval, "how often the sources files are re-read without a change notification")
	fs.IntVar(&o.Keep, "keep", DefaultKeep, "newest versions kept per source, besides pinned ones")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "largest body an http source may send")
	fs.Int64Var(&o.MaxVersionBytes, "max-version-bytes", DefaultMaxVersionBytes, "largest version (its canonical tar, unpacked)")
	fs.IntVar(&o.MaxEntries, "max-entries", DefaultMaxEntries, "most files and directories in one version")
	fs.StringVar(&o.GitPath, "git", "git", "git binary")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "how long SIGTERM waits for requests in flight")
}
