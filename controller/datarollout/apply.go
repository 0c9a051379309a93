package datarollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shared "github.com/autocrane/autocrane/controller"
	"github.com/autocrane/autocrane/spec"
)

// pinRetry is how soon a line is looked at again after a failed pin.
const pinRetry = 10 * time.Second

// act carries out a decision. The state is written first, with optimistic
// concurrency: if that fails nothing else happens, so no pod is moved on a
// state that was not persisted, and no Event is recorded twice. Then the
// pods that go back to the last known good version are patched, the
// repository is asked to pin the line's versions, and only once that
// succeeded are pods moved forward to the rolling version.
func (c *Controller) act(ctx context.Context, line Line, cm *corev1.ConfigMap, in Input, d Decision) (ctrl.Result, error) {
	log := c.log.WithValues("line", line.String())
	wrote, err := c.writeState(ctx, line, cm, d.State)
	if err != nil {
		if apierrors.IsAlreadyExists(err) && cm == nil && !c.recentlyWritten(line.Name()) {
			// The cache would have it if it carried our label.
			c.metrics.Writes.WithLabelValues("state", "error").Inc()
			return ctrl.Result{}, fmt.Errorf("a ConfigMap %s/%s exists without the label %s=true: rename or label it: %w", c.stateNS, line.Name(), LabelState, err)
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			c.metrics.Writes.WithLabelValues("state", "conflict").Inc()
			log.V(1).Info("state changed underneath; deciding again")
			return ctrl.Result{RequeueAfter: staleRetry}, nil
		}
		c.metrics.Writes.WithLabelValues("state", "error").Inc()
		return ctrl.Result{}, err
	}
	if wrote {
		c.metrics.Writes.WithLabelValues("state", "ok").Inc()
	}
	c.metrics.setLine(line.Name(), d.State)
	c.metrics.observe(d)
	c.record(ctx, in, d)

	var errs []error
	for _, ch := range d.Changes {
		if !ch.Forward {
			errs = append(errs, c.patchRequest(ctx, line.Name(), ch))
		}
	}
	result := ctrl.Result{RequeueAfter: c.next(d)}
	pinned := c.pin(ctx, line, in.Catalog, d.State)
	if !pinned {
		result.RequeueAfter = min(result.RequeueAfter, pinRetry)
	}
	for _, ch := range d.Changes {
		if ch.Forward && pinned {
			errs = append(errs, c.patchRequest(ctx, line.Name(), ch))
		}
	}
	for _, err := range errs {
		if err != nil {
			return ctrl.Result{}, err
		}
	}
	return result, nil
}

// writeState creates or updates the line's ConfigMap when the state
// changed. An empty state is not written until there is something in it.
func (c *Controller) writeState(ctx context.Context, line Line, cm *corev1.ConfigMap, st State) (bool, error) {
	data, err := st.Marshal()
	if err != nil {
		return false, err
	}
	if cm == nil {
		if st.Empty() {
			return false, nil
		}
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: c.stateNS, Name: line.Name()}}
		setIdentity(cm, line)
		cm.Data = map[string]string{KeyState: data}
		if err := c.client.Create(ctx, cm); err != nil {
			return false, fmt.Errorf("create data rollout state %s: %w", cm.Name, err)
		}
		c.setWritten(cm.Name, "")
		return true, nil
	}
	if cm.Data[KeyState] == data {
		return false, nil
	}
	next := cm.DeepCopy()
	setIdentity(next, line)
	if next.Data == nil {
		next.Data = map[string]string{}
	}
	next.Data[KeyState] = data
	// Update carries the cached resourceVersion: a concurrent change (an
	// operator's edit, another leader) makes it fail rather than be lost.
	if err := c.client.Update(ctx, next); err != nil {
		return false, fmt.Errorf("update data rollout state %s: %w", cm.Name, err)
	}
	c.setWritten(cm.Name, cm.ResourceVersion)
	return true, nil
}

func setIdentity(cm *corev1.ConfigMap, line Line) {
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels[LabelState] = "true"
	cm.Labels[LabelNamespace] = line.Namespace
	cm.Labels[LabelSource] = line.Source
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[AnnotationStoreURL] = line.StoreURL
}

func (c *Controller) recentlyWritten(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	mark, ok := c.written[name]
	return ok && c.clock.Since(mark.at) < staleLimit
}

func (c *Controller) setWritten(name, replaced string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[name] = writeMark{replaced: replaced, at: c.clock.Now()}
}

// patchRequest writes one pod's request key, alone, with a merge patch that
// also names the pod's UID, so a pod replaced under the same name is not
// touched. The write is remembered for the line's next decisions (see
// podsLag).
func (c *Controller) patchRequest(ctx context.Context, lineName string, ch RequestChange) error {
	key := spec.PrefixDataRequest + ch.Deployment
	var value any
	if ch.To != "" {
		value = ch.To
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         ch.UID,
		"annotations": map[string]any{key: value},
	}})
	if err != nil {
		return fmt.Errorf("encode request patch: %w", err)
	}
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = ch.Pod.Namespace, ch.Pod.Name
	if err := c.client.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		c.metrics.Writes.WithLabelValues("request", "error").Inc()
		return fmt.Errorf("patch %s of pod %s: %w", key, ch.Pod, err)
	}
	c.metrics.Writes.WithLabelValues("request", "ok").Inc()
	c.markRequest(lineName, ch)
	c.log.V(1).Info("wrote data request", "pod", ch.Pod, "key", key, "from", ch.From, "to", ch.To)
	return nil
}

// pin makes the repository keep every version that a line of the same
// repository and source needs. The repository's pins are one set per
// source, so they are the union over the lines of every namespace that
// uses it. It reports whether the pins are in place.
func (c *Controller) pin(ctx context.Context, line Line, cat Catalog, st State) bool {
	if !cat.Reachable {
		return false
	}
	want := map[string]bool{}
	for _, id := range st.Pins() {
		want[id] = true
	}
	var others corev1.ConfigMapList
	if err := c.states.List(ctx, &others, client.InNamespace(c.stateNS), client.MatchingLabels{LabelSource: line.Source}); err != nil {
		c.log.Error(err, "cannot list the other lines' states; pins not changed", "line", line.String())
		return false
	}
	for i := range others.Items {
		o := &others.Items[i]
		if o.Name == line.Name() || o.Annotations[AnnotationStoreURL] != line.StoreURL {
			continue
		}
		var id struct{ Line }
		if json.Unmarshal([]byte(o.Data[KeyState]), &id) != nil {
			continue
		}
		if ost, err := ParseState(o.Data[KeyState], id.Line); err == nil && id.Line.StoreURL == line.StoreURL && id.Line.Source == line.Source {
			for _, v := range ost.Pins() {
				want[v] = true
			}
		}
	}
	// Only versions the repository lists can be pinned.
	listed := map[string]bool{}
	for _, v := range cat.Versions {
		listed[v.ID] = true
	}
	var ids []string
	for id := range want {
		if listed[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	have := slices.Sorted(slices.Values(cat.Pins))
	if slices.Equal(ids, have) {
		return true
	}
	if len(ids) > maxPins {
		ids = ids[len(ids)-maxPins:]
	}
	if err := c.repo.Pin(ctx, line.StoreURL, line.Source, ids); err != nil {
		c.metrics.RepositoryRequests.WithLabelValues("pin", "error").Inc()
		c.log.Error(err, "cannot pin data versions; pods are not moved forward until it works", "line", line.String(), "pins", ids)
		return false
	}
	c.metrics.RepositoryRequests.WithLabelValues("pin", "ok").Inc()
	return true
}

// record records the decision's Events on the groups' owners (the
// Deployment above a ReplicaSet when there is one), or on the first pod of
// a group without an owner, and logs them.
func (c *Controller) record(ctx context.Context, in Input, d Decision) {
	firstPod := map[string]types.NamespacedName{}
	for _, s := range in.Slots {
		if _, ok := firstPod[s.Group.Key]; !ok {
			firstPod[s.Group.Key] = s.Pod
		}
	}
	owners := map[string]runtime.Object{}
	for _, e := range d.Events {
		c.log.Info(e.Message, "line", in.Line.String(), "reason", e.Reason)
		var related runtime.Object
		if e.Pod != nil {
			related = podRef(*e.Pod)
		}
		for _, g := range e.Groups {
			obj, ok := owners[g.Key]
			if !ok {
				obj = c.regarding(ctx, g, firstPod[g.Key])
				owners[g.Key] = obj
			}
			if obj != nil {
				c.recorder.Eventf(obj, related, e.Type, string(e.Reason), eventAction(e.Message), "%s", e.Message)
			}
		}
	}
}

// eventAction is an Event's action: "DataRollout-" and 8 hex digits of the
// note's sha256. client-go's events.k8s.io recorder folds Events that
// differ only in their note into one series and keeps the first note, so
// with one fixed action every wave of a rollout after the first, and every
// later rollout, would only bump the count of the first Event of its
// reason (a DataPromoted Event naming the version promoted before).
// Identical notes still make one series.
func eventAction(note string) string {
	sum := sha256.Sum256([]byte(note))
	return "DataRollout-" + hex.EncodeToString(sum[:4])
}

func (c *Controller) regarding(ctx context.Context, g Group, pod types.NamespacedName) runtime.Object {
	if g.Owner == nil {
		if pod.Name == "" {
			return nil
		}
		return podRef(pod)
	}
	return shared.WorkloadOf(ctx, c.client, pod.Namespace, *g.Owner)
}

func podRef(key types.NamespacedName) *corev1.Pod {
	p := &corev1.Pod{}
	p.APIVersion, p.Kind = "v1", "Pod"
	p.Namespace, p.Name = key.Namespace, key.Name
	return p
}

// markRequest remembers a request the controller wrote into a pod, until
// the pod cache shows it.
func (c *Controller) markRequest(lineName string, ch RequestChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.requested == nil {
		c.requested = map[string]map[requestKey]requestMark{}
	}
	marks := c.requested[lineName]
	if marks == nil {
		marks = map[requestKey]requestMark{}
		c.requested[lineName] = marks
	}
	marks[requestKey{uid: ch.UID, deployment: ch.Deployment}] = requestMark{value: ch.To, at: c.clock.Now()}
}

// podsLag reports whether the pod cache does not show yet a request the
// controller wrote for the line. Deciding on such a cache would count too
// few pods on the rolling version and ask more pods than the wave holds
// (or other pods than those asked, when their ranking changed meanwhile).
// A mark is dropped once the cache shows it, when its pod is gone, and
// after staleLimit (someone else may have changed the request since).
func (c *Controller) podsLag(lineName string, slots []Slot) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	marks := c.requested[lineName]
	if len(marks) == 0 {
		return false
	}
	cached := make(map[requestKey]string, len(slots))
	for _, s := range slots {
		cached[requestKey{uid: s.UID, deployment: s.Group.Deployment}] = s.Request
	}
	lag := false
	for k, m := range marks {
		if got, ok := cached[k]; ok && got != m.value && c.clock.Since(m.at) < staleLimit {
			lag = true
			continue
		}
		delete(marks, k)
	}
	if len(marks) == 0 {
		delete(c.requested, lineName)
	}
	return lag
}
