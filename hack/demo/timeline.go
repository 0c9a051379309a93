package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// timeline watches what the data story shows and keeps every change in
// the order the watches delivered it: the pods and events.k8s.io Events of
// the story's namespace, and the ConfigMaps of AutoCrane's namespace (the
// data rollouts' state). Each pod change also goes to the downward API,
// which writes the pods' annotation files.
type timeline struct {
	factories []informers.SharedInformerFactory
	pods      listersv1.PodLister
	stopCh    chan struct{}

	mu      sync.Mutex
	changes []change
}

// change is one object as a watch delivered it; one of its pointers is set.
type change struct {
	at        time.Time
	pod       *corev1.Pod
	event     *eventsv1.Event
	configMap *corev1.ConfigMap
}

// startTimeline starts the watches and returns once they have listed what
// exists. Call stop when done.
func startTimeline(ctx context.Context, cfg *rest.Config, downward *downwardAPI) (*timeline, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("watch the data story: %w", err)
	}
	story := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(dataNamespace))
	own := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ownNamespace))
	t := &timeline{factories: []informers.SharedInformerFactory{story, own}, stopCh: make(chan struct{})}
	pods := story.Core().V1().Pods()
	t.pods = pods.Lister()
	record := func(obj any) {
		c := change{at: time.Now()}
		switch o := obj.(type) {
		case *corev1.Pod:
			downward.update(o)
			c.pod = o
		case *eventsv1.Event:
			c.event = o
		case *corev1.ConfigMap:
			c.configMap = o
		default:
			return
		}
		t.mu.Lock()
		t.changes = append(t.changes, c)
		t.mu.Unlock()
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) }}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), story.Events().V1().Events().Informer(), own.Core().V1().ConfigMaps().Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return nil, fmt.Errorf("watch the data story: %w", err)
		}
	}
	for _, f := range t.factories {
		f.Start(t.stopCh)
	}
	for _, f := range t.factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				t.stop()
				return nil, errors.Join(fmt.Errorf("watch the data story: %v did not sync", typ), ctx.Err())
			}
		}
	}
	return t, nil
}

// stop ends the watches and waits for them.
func (t *timeline) stop() {
	close(t.stopCh)
	for _, f := range t.factories {
		f.Shutdown()
	}
}

// since returns the changes from index i on, and the index after them.
func (t *timeline) since(i int) ([]change, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]change(nil), t.changes[i:]...), len(t.changes)
}

// readers lists the reader Deployment's pods that are not being deleted,
// as the watch sees them now, by name.
func (t *timeline) readers() ([]*corev1.Pod, error) {
	all, err := t.pods.Pods(dataNamespace).List(labels.SelectorFromSet(labels.Set{"app": dataApp}))
	if err != nil {
		return nil, fmt.Errorf("list the reader's pods: %w", err)
	}
	var pods []*corev1.Pod
	for _, p := range all {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}
