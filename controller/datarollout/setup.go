package datarollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/autocrane/autocrane/spec"
)

// Defaults of Options.
const (
	DefaultPollInterval     = 30 * time.Second
	DefaultProgressDeadline = 10 * time.Minute
	DefaultStatusInterval   = 5 * time.Second
	DefaultStatusResync     = time.Minute
)

// Options configure the data rollout. Zero values mean the defaults.
type Options struct {
	// StateNamespace holds the state ConfigMaps: AutoCrane's own
	// namespace. Required.
	StateNamespace string
	// PollInterval is how often each line asks its repository for new
	// versions (--data-poll-interval); 0: 30 s.
	PollInterval time.Duration
	// ProgressDeadline: a wave whose pods do not all hold the version live
	// this long after it asked for it fails; 0: 10 min.
	ProgressDeadline time.Duration
	// DeployerPort is the injected datadeployer's port; 0: 9780. Pass the
	// injector's DataDeployerPort.
	DeployerPort int32
	// StatusInterval is how often a pod's /status is read while a data
	// deployment of it is not live on its request; 0: 5 s.
	StatusInterval time.Duration
	// StatusResync is how often it is read otherwise; 0: 1 min.
	StatusResync time.Duration
	// StatusTimeout bounds one /status read; 0: 2 s.
	StatusTimeout time.Duration
	// RepositoryTimeout bounds one repository request; 0: 10 s.
	RepositoryTimeout time.Duration
	// RepositoryToken, when set, gives the bearer token for a repository
	// base URL ("" for none). Store URLs come from users: return a token
	// only for URLs the operator trusts.
	RepositoryToken func(baseURL string) string
	// MaxConcurrentReconciles of lines; 0: 2. Status reads run 4 at once.
	MaxConcurrentReconciles int
	// Repository and Dial are seams for tests; nil: HTTP and TCP.
	Repository Repository
	Dial       DialFunc
	// Registerer receives the metrics; required.
	Registerer prometheus.Registerer
	Clock      clock.PassiveClock
	Log        logr.Logger
	// SkipNameValidation allows a second controller of the same name in
	// one process (tests that restart the manager).
	SkipNameValidation bool
}

func (o *Options) setDefaults() error {
	if o.StateNamespace == "" {
		return errors.New("data rollout: the state namespace (AutoCrane's own) is required")
	}
	if o.Registerer == nil {
		return errors.New("data rollout: a metrics registerer is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.ProgressDeadline, DefaultProgressDeadline)
	def(&o.StatusInterval, DefaultStatusInterval)
	def(&o.StatusResync, DefaultStatusResync)
	def(&o.StatusTimeout, DefaultStatusTimeout)
	def(&o.RepositoryTimeout, DefaultRepositoryTimeout)
	for _, d := range []time.Duration{o.PollInterval, o.ProgressDeadline, o.StatusInterval, o.StatusResync, o.StatusTimeout, o.RepositoryTimeout} {
		if d < 0 {
			return fmt.Errorf("data rollout: negative duration %s", d)
		}
	}
	if o.PollInterval < time.Second {
		return fmt.Errorf("data rollout: poll interval %s is shorter than 1s", o.PollInterval)
	}
	if o.DeployerPort == 0 {
		o.DeployerPort = DefaultDeployerPort
	}
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = 2
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Repository == nil {
		o.Repository = NewHTTPRepository(o.RepositoryTimeout, o.RepositoryToken)
	}
	return nil
}

// SourceIndex is the pod cache index of the sources a pod's data
// deployments are fed from.
const SourceIndex = "autocrane.io/data-source"

// Controller is the data rollout: the line reconciler, the pod status
// reconciler, and the view of the persisted state that admission reads.
type Controller struct {
	client   client.Client
	states   client.Reader
	stateNS  string
	repo     Repository
	recorder recorder.EventRecorder
	metrics  *Metrics
	clock    clock.PassiveClock
	log      logr.Logger
	poll     time.Duration
	deadline time.Duration
	trigger  chan event.GenericEvent

	mu    sync.Mutex
	lines map[string]Line
	// written remembers, per line, the ConfigMap resourceVersion a write
	// replaced, so a decision is never made on a cache older than our
	// own last write.
	written map[string]writeMark
	// requested remembers, per line, the request values the controller
	// wrote into pods, so a decision is never made on a pod cache that
	// does not show them yet.
	requested map[string]map[requestKey]requestMark
}

// writeMark is a state write the cache may not have seen yet.
type writeMark struct {
	replaced string
	at       time.Time
}

// requestKey is one data deployment of one pod.
type requestKey struct {
	uid        types.UID
	deployment string
}

// requestMark is a request write the pod cache may not have seen yet:
// the value written ("" for a removal) and when.
type requestMark struct {
	value string
	at    time.Time
}

// Setup adds the data rollout to mgr: a cache of the state ConfigMaps (run
// on every replica, so admission can read the last known good versions),
// and the line and status controllers (leader only). It indexes pods by
// SourceIndex, so it must run before the manager starts. The manager's pod
// cache must keep AutoCrane's keys (controller.TrimPod does), and
// namespaces must be readable as metav1.PartialObjectMetadata.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) (*Controller, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := NewMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	states, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultNamespaces:    map[string]cache.Config{opts.StateNamespace: {}},
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{LabelState: "true"}),
		DefaultTransform:     cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("data rollout: state cache: %w", err)
	}
	if err := mgr.Add(stateCache{states}); err != nil {
		return nil, fmt.Errorf("data rollout: add state cache: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, SourceIndex, indexSources); err != nil {
		return nil, fmt.Errorf("data rollout: index pods by source: %w", err)
	}
	c := &Controller{
		client:   mgr.GetClient(),
		states:   states,
		stateNS:  opts.StateNamespace,
		repo:     opts.Repository,
		recorder: mgr.GetEventRecorder("autocrane-data-rollout"),
		metrics:  m,
		clock:    opts.Clock,
		log:      opts.Log.WithName("data-rollout"),
		poll:     opts.PollInterval,
		deadline: opts.ProgressDeadline,
		trigger:  make(chan event.GenericEvent, 1024),
		lines:    map[string]Line{},
		written:  map[string]writeMark{},
	}
	usesData := predicate.NewPredicateFuncs(func(o client.Object) bool { return len(deployments(o.GetAnnotations())) > 0 })
	err = ctrl.NewControllerManagedBy(mgr).
		Named("data-rollout").
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(c.linesOfPod), builder.WithPredicates(usesData, podChanged())).
		WatchesRawSource(source.Kind[client.Object](states, &corev1.ConfigMap{}, &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Channel(c.trigger, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles, SkipNameValidation: &opts.SkipNameValidation}).
		Complete(c)
	if err != nil {
		return nil, fmt.Errorf("add data rollout controller: %w", err)
	}
	sr := &statusReconciler{
		client:   mgr.GetClient(),
		metrics:  m,
		log:      c.log.WithName("status"),
		interval: opts.StatusInterval,
		resync:   opts.StatusResync,
	}
	sr.reader = NewStatusReader(opts.DeployerPort, opts.StatusTimeout, opts.Dial, sr.currentIP)
	err = ctrl.NewControllerManagedBy(mgr).
		Named("data-status").
		For(&corev1.Pod{}, builder.WithPredicates(usesData)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: &opts.SkipNameValidation}).
		Complete(sr)
	if err != nil {
		return nil, fmt.Errorf("add data status controller: %w", err)
	}
	return c, nil
}

// stateCache runs the state ConfigMap cache with the manager's caches, on
// every replica, and starts its informer at once rather than at the first
// read.
type stateCache struct{ cache.Cache }

func (s stateCache) Start(ctx context.Context) error {
	if _, err := s.GetInformer(ctx, &corev1.ConfigMap{}, cache.BlockUntilSynced(false)); err != nil {
		return fmt.Errorf("data rollout: state informer: %w", err)
	}
	return s.Cache.Start(ctx)
}

func (s stateCache) GetCache() cache.Cache { return s.Cache }

// deployments are a pod's data deployments, read through spec.
func deployments(annotations map[string]string) []spec.DataDeployment {
	p, _ := spec.ParsePod(spec.Namespace{}, annotations)
	return p.Deployments
}

// indexSources indexes a pod by the sources of its data deployments.
func indexSources(obj client.Object) []string {
	var out []string
	for _, d := range deployments(obj.GetAnnotations()) {
		out = append(out, d.Source)
	}
	return out
}

// podChanged passes creates, deletes and the updates that matter to a
// rollout: AutoCrane's keys, deletion, phase and readiness.
func podChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
		if o == nil || n == nil {
			return true
		}
		return !mapsEqual(o.Annotations, n.Annotations) || !mapsEqual(o.Labels, n.Labels) ||
			(o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) || o.Status.Phase != n.Status.Phase ||
			podReady(o) != podReady(n)
	}}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Trigger asks every known line of (storeURL, source) to look at its
// repository now, for a repository's push notification. It never blocks;
// when the queue is full the next poll does the work.
func (c *Controller) Trigger(storeURL, source string) {
	c.mu.Lock()
	var names []string
	for name, l := range c.lines {
		if l.StoreURL == storeURL && l.Source == source {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	for _, name := range names {
		cm := &corev1.ConfigMap{}
		cm.Namespace, cm.Name = c.stateNS, name
		select {
		case c.trigger <- event.GenericEvent{Object: cm}:
		default:
		}
	}
}

// remember records a line seen on a pod, so its reconcile knows it.
func (c *Controller) remember(l Line) types.NamespacedName {
	name := l.Name()
	c.mu.Lock()
	c.lines[name] = l
	c.mu.Unlock()
	return types.NamespacedName{Namespace: c.stateNS, Name: name}
}
