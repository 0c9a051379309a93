package datarollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/autocrane/autocrane/spec"
)

// statusReconciler mirrors each pod's datadeployer /status into its
// status.data.autocrane.io/NAME annotations, writing only the keys that
// changed. It reads often while a data deployment is not live on its
// request (a wave waits for it), and rarely otherwise.
type statusReconciler struct {
	client   client.Client
	reader   *StatusReader
	metrics  *Metrics
	log      logr.Logger
	interval time.Duration
	resync   time.Duration
}

// Reconcile reads one pod's /status.
func (s *statusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1.Pod{}
	if err := s.client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get pod: %w", err)
	}
	deps := deployments(pod.Annotations)
	if len(deps) == 0 || pod.DeletionTimestamp != nil || pod.Status.PodIP == "" ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return ctrl.Result{}, nil
	}
	names := make([]string, len(deps))
	for i, d := range deps {
		names[i] = d.Name
	}
	st, err := s.reader.Read(ctx, StatusTarget{Pod: req.NamespacedName, UID: pod.UID, IP: pod.Status.PodIP})
	switch {
	case errors.Is(err, ErrNotPodIP):
		s.metrics.StatusReads.WithLabelValues("skipped").Inc()
		return ctrl.Result{RequeueAfter: s.interval}, nil
	case err != nil:
		s.metrics.StatusReads.WithLabelValues("error").Inc()
		s.log.V(1).Info("cannot read the datadeployer's status", "pod", req.NamespacedName, "error", err.Error())
		return ctrl.Result{RequeueAfter: s.wait(pod.Annotations, names)}, nil
	}
	s.metrics.StatusReads.WithLabelValues("ok").Inc()
	values := StatusValues(pod.Annotations, names, st)
	if len(values) > 0 {
		if err := s.write(ctx, pod, values); err != nil {
			return ctrl.Result{}, err
		}
		for k, v := range values {
			pod.Annotations[k] = v
		}
	}
	return ctrl.Result{RequeueAfter: s.wait(pod.Annotations, names)}, nil
}

// wait is the short interval while a deployment is not live on its
// request, else the resync interval.
func (s *statusReconciler) wait(annotations map[string]string, names []string) time.Duration {
	if settled(annotations, names) {
		return s.resync
	}
	return s.interval
}

// settled reports whether every deployment with a request holds it live.
func settled(annotations map[string]string, names []string) bool {
	for _, n := range names {
		r, err := spec.ParseDataRequest(annotations[spec.PrefixDataRequest+n])
		if err != nil {
			continue
		}
		st, err := spec.ParseDataStatus(annotations[spec.PrefixDataStatus+n])
		if err != nil || st.State != spec.DataLive || st.Version != r.ID || st.Digest != r.Digest {
			return false
		}
	}
	return true
}

// write patches the changed status keys, alone, naming the pod's UID.
func (s *statusReconciler) write(ctx context.Context, pod *corev1.Pod, values map[string]string) error {
	annotations := make(map[string]any, len(values))
	for k, v := range values {
		annotations[k] = v
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pod.UID, "annotations": annotations}})
	if err != nil {
		return fmt.Errorf("encode status patch: %w", err)
	}
	target := &corev1.Pod{}
	target.Namespace, target.Name = pod.Namespace, pod.Name
	if err := s.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		s.metrics.Writes.WithLabelValues("status", "error").Inc()
		return fmt.Errorf("patch data status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	s.metrics.Writes.WithLabelValues("status", "ok").Inc()
	s.log.V(1).Info("recorded data status", "pod", client.ObjectKeyFromObject(pod), "values", values)
	return nil
}

// currentIP answers a pod's current IP from the cache, for the guarded
// dialer: only a running pod with the same UID has one.
func (s *statusReconciler) currentIP(ctx context.Context, key types.NamespacedName, uid types.UID) (string, bool) {
	pod := &corev1.Pod{}
	if err := s.client.Get(ctx, key, pod); err != nil || pod.UID != uid || pod.DeletionTimestamp != nil {
		return "", false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || pod.Status.PodIP == "" {
		return "", false
	}
	return pod.Status.PodIP, true
}
