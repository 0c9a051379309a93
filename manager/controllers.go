package manager

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/controller/datarollout"
	"github.com/autocrane/autocrane/controller/eviction"
	"github.com/autocrane/autocrane/controller/watchdog"
	"github.com/autocrane/autocrane/webhook"
)

// ControllerOptions configure the controllers. Zero values mean defaults.
type ControllerOptions struct {
	// Disabled runs the webhooks only.
	Disabled bool
	// ProbeWorkers is how many watchdog probes run at once; 0: 32.
	ProbeWorkers int
	// EvictionDryRun logs and records Events instead of evicting.
	EvictionDryRun bool
	// EvictionStormShare: evict none of an owner's pods when more than this
	// share of them (and at least two) are in error; 0: 0.5.
	EvictionStormShare float64
	// EvictionsPerMinute caps evictions cluster-wide; 0: 30.
	EvictionsPerMinute float64
	// EvictionBurst is the rate limit's burst; 0: 5.
	EvictionBurst int
	// ProbeDial is a seam for tests that record the prober's connections.
	ProbeDial watchdog.DialFunc
	// SkipNameValidation lets one process build the controllers more than
	// once (tests that restart the manager); controller-runtime otherwise
	// refuses a second controller of the same name.
	SkipNameValidation bool
	// DataPollInterval is how often each data rollout asks its repository
	// for new versions; 0: 30 s.
	DataPollInterval time.Duration
	// DataRepositoryTokenFile holds the bearer token the data rollout sends
	// to data repositories whose host is in DataRepositoryTokenHosts; store
	// URLs come from users, so the token goes to no other host. Empty: none.
	DataRepositoryTokenFile  string
	DataRepositoryTokenHosts []string
}

// repositoryToken returns the token for the repositories the operator
// trusts, read from the file at each use so a rotated Secret takes effect.
func (c ControllerOptions) repositoryToken() func(baseURL string) string {
	if c.DataRepositoryTokenFile == "" || len(c.DataRepositoryTokenHosts) == 0 {
		return nil
	}
	return func(baseURL string) string {
		u, err := url.Parse(baseURL)
		if err != nil || !slices.Contains(c.DataRepositoryTokenHosts, u.Hostname()) {
			return ""
		}
		b, err := os.ReadFile(c.DataRepositoryTokenFile)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
}

// controllers are what the webhooks use of the controllers.
type controllers struct {
	data *datarollout.Controller
}

// initialRequests is the data rollout's view of the versions new pods start
// on, or nil when data rollouts are off.
func (c controllers) initialRequests() webhook.InitialRequester {
	if c.data == nil {
		return nil
	}
	return c.data
}

// addControllers adds the leader-elected controllers and the pod cache
// index they share.
func addControllers(ctx context.Context, mgr ctrl.Manager, opts Options, reg prometheus.Registerer) (controllers, error) {
	var out controllers
	c := opts.Controllers
	if c.Disabled {
		return out, nil
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, controller.OwnerIndex, controller.IndexOwner); err != nil {
		return out, fmt.Errorf("index pods by owner: %w", err)
	}
	if _, err := watchdog.Setup(mgr, watchdog.Options{
		Workers:            c.ProbeWorkers,
		SkipNameValidation: c.SkipNameValidation,
		Dial:               c.ProbeDial,
		Registerer:         reg,
		Log:                opts.Logger,
	}); err != nil {
		return out, err
	}
	if _, err := eviction.Setup(mgr, eviction.Options{
		StormShare:         c.EvictionStormShare,
		RatePerMinute:      c.EvictionsPerMinute,
		Burst:              c.EvictionBurst,
		DryRun:             c.EvictionDryRun,
		SkipNameValidation: c.SkipNameValidation,
		Registerer:         reg,
		Log:                opts.Logger,
	}); err != nil {
		return out, err
	}
	if opts.Namespace == "" {
		// The rollout state lives in AutoCrane's own namespace.
		opts.Logger.Info("data rollouts are off: no --namespace to keep their state in")
		return out, nil
	}
	data, err := datarollout.Setup(ctx, mgr, datarollout.Options{
		StateNamespace:     opts.Namespace,
		PollInterval:       c.DataPollInterval,
		RepositoryToken:    c.repositoryToken(),
		DeployerPort:       opts.Injector.DataDeployerPort,
		Registerer:         reg,
		Log:                opts.Logger,
		SkipNameValidation: c.SkipNameValidation,
	})
	if err != nil {
		return out, err
	}
	out.data = data
	return out, nil
}
