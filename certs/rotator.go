package certs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// minBackoff and maxBackoff bound the wait after a failed pass.
	minBackoff = time.Second
	maxBackoff = 2 * time.Minute
	// maxWait is the longest the Rotator sleeps without looking, so a
	// missed event or a suspended clock costs at most this long.
	maxWait = time.Hour
	// cacheCatchUp bounds the wait for the cache to show our own write.
	cacheCatchUp = 10 * time.Second
)

// RotatorOptions configure NewRotator.
type RotatorOptions struct {
	// Client reads the Secret and the webhook configurations (the manager's
	// cache, restricted to these objects) and writes them. Required.
	Client client.Client
	// Informers, when set, wake the Rotator on every change of the Secret
	// and of the configurations. Nil: only its timer wakes it.
	Informers cache.Informers
	// Secret is where the CA and serving certificate live. Required.
	Secret types.NamespacedName
	// Webhooks are the configurations that must trust the CA.
	Webhooks WebhookConfigurations
	// Policy is defaulted with WithDefaults, then validated.
	Policy Policy
	// SANs are the serving certificate's names. At least one is required.
	SANs SANs
	// Clock is the time source. Nil: the real clock.
	Clock clock.Clock
	// Logger logs every action. Zero: discard.
	Logger logr.Logger
}

// Rotator keeps the self-managed Secret and the webhook configurations'
// caBundle. It is a manager runnable that runs on the leader only; every
// replica serves from the Secret through Serving.
type Rotator struct {
	opts RotatorOptions
}

// NewRotator checks the options.
func NewRotator(opts RotatorOptions) (*Rotator, error) {
	opts.Policy = opts.Policy.WithDefaults()
	if err := opts.Policy.Validate(); err != nil {
		return nil, err
	}
	if opts.Client == nil {
		return nil, errors.New("rotator: a client is required")
	}
	if opts.Secret.Name == "" || opts.Secret.Namespace == "" {
		return nil, fmt.Errorf("rotator: Secret %q: a name and a namespace are required", opts.Secret)
	}
	if len(opts.SANs.DNSNames)+len(opts.SANs.IPAddresses) == 0 {
		return nil, errors.New("rotator: the serving certificate needs at least one name")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Rotator{opts: opts}, nil
}

// NeedLeaderElection makes the manager run the Rotator on the leader only.
func (r *Rotator) NeedLeaderElection() bool { return true }

// Start runs passes until ctx ends: after every change of the watched
// objects, when the last decision said to look again, and after errors
// with a backoff.
func (r *Rotator) Start(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	if r.opts.Informers != nil {
		stop, err := r.watch(ctx, wake)
		if err != nil {
			return err
		}
		defer stop()
	}
	backoff := minBackoff
	for {
		d, err := r.Reconcile(ctx)
		next := d.RequeueAfter
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.opts.Logger.Error(err, "webhook certificate pass failed", "retryIn", backoff)
			next, backoff = backoff, min(2*backoff, maxBackoff)
		default:
			backoff = minBackoff
		}
		timer := r.opts.Clock.NewTimer(min(next, maxWait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-wake:
			timer.Stop()
		case <-timer.C():
		}
	}
}

// watch wakes the loop (without blocking) on any event of the Secret or of
// the configurations; the returned func removes the handlers.
func (r *Rotator) watch(ctx context.Context, wake chan<- struct{}) (func(), error) {
	kick := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kick() },
		UpdateFunc: func(any, any) { kick() },
		DeleteFunc: func(any) { kick() },
	}
	objs := []client.Object{&corev1.Secret{}}
	if r.opts.Webhooks.Mutating != "" {
		objs = append(objs, &admissionregistrationv1.MutatingWebhookConfiguration{})
	}
	if r.opts.Webhooks.Validating != "" {
		objs = append(objs, &admissionregistrationv1.ValidatingWebhookConfiguration{})
	}
	var removers []func()
	stop := func() {
		for _, f := range removers {
			f()
		}
	}
	for _, obj := range objs {
		inf, err := r.opts.Informers.GetInformer(ctx, obj)
		if err != nil {
			stop()
			return nil, fmt.Errorf("watch %T: %w", obj, err)
		}
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			stop()
			return nil, fmt.Errorf("watch %T: %w", obj, err)
		}
		removers = append(removers, func() { _ = inf.RemoveEventHandler(reg) })
	}
	return stop, nil
}

// Reconcile is one pass: read the Secret, make the webhook configurations
// trust what it holds, decide, and carry out the decision (write the
// Secret, then publish its new bundle). After an action it returns a
// decision with RequeueAfter 0, so the next step follows at once.
func (r *Rotator) Reconcile(ctx context.Context) (Decision, error) {
	o := r.opts
	secret := &corev1.Secret{}
	exists := true
	if err := o.Client.Get(ctx, o.Secret, secret); err != nil {
		if !apierrors.IsNotFound(err) {
			return Decision{}, fmt.Errorf("read Secret %s: %w", o.Secret, err)
		}
		exists = false
	}
	state := Parse(secret.Data, secret.Annotations)
	published := false
	if exists && state.CA != nil {
		if err := r.publish(ctx, state); err != nil {
			return Decision{}, err
		}
		published = true
	}
	now := o.Clock.Now()
	d := Decide(Input{SecretExists: exists, State: state, BundlePublished: published, Now: now, Policy: o.Policy, SANs: o.SANs})
	if d.Action == ActionNone {
		return d, nil
	}
	o.Logger.Info("changing webhook certificates", "secret", o.Secret, "action", d.Action, "reason", d.Reason, "detail", d.Message)
	next, err := Apply(state, d.Action, now, o.Policy, o.SANs)
	if err != nil {
		return d, fmt.Errorf("%s: %w", d.Action, err)
	}
	if err := r.write(ctx, secret, exists, next); err != nil {
		return d, err
	}
	if err := r.publish(ctx, next); err != nil {
		return d, err
	}
	d.RequeueAfter = 0
	return d, nil
}

func (r *Rotator) publish(ctx context.Context, s State) error {
	patched, err := publishBundle(ctx, r.opts.Client, r.opts.Client, r.opts.Webhooks, TrustBundle(s))
	if len(patched) > 0 {
		r.opts.Logger.Info("webhook configurations now trust the CA bundle", "configurations", patched)
	}
	return err
}

// write stores s in the Secret (creating it when missing), then waits
// until the cache shows the write, so that the next pass does not decide
// on what it just replaced.
func (r *Rotator) write(ctx context.Context, secret *corev1.Secret, exists bool, s State) error {
	o := r.opts
	data, annotations := Encode(s)
	var out *corev1.Secret
	if exists {
		out = secret.DeepCopy()
	} else {
		out = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: o.Secret.Name, Namespace: o.Secret.Namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "autocrane"}},
			Type: corev1.SecretTypeTLS,
		}
	}
	out.Data = data
	for k, v := range annotations {
		if v == "" {
			delete(out.Annotations, k)
			continue
		}
		metav1.SetMetaDataAnnotation(&out.ObjectMeta, k, v)
	}
	var err error
	if exists {
		err = o.Client.Update(ctx, out)
	} else {
		err = o.Client.Create(ctx, out)
	}
	if err != nil {
		return fmt.Errorf("write Secret %s: %w", o.Secret, err)
	}
	rv := out.ResourceVersion
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, cacheCatchUp, true, func(ctx context.Context) (bool, error) {
		var cached corev1.Secret
		if err := o.Client.Get(ctx, o.Secret, &cached); err != nil {
			return false, nil //nolint:nilerr // not in the cache yet
		}
		return cached.ResourceVersion == rv, nil
	})
	if err != nil && ctx.Err() == nil {
		// Not fatal: a stale read only repeats a step, and the Update's
		// resourceVersion check refuses it.
		o.Logger.Info("cache did not show the Secret write in time", "secret", o.Secret, "resourceVersion", rv)
	}
	return nil
}
