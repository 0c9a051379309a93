package main

import (
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/autocrane/autocrane/sidecars/podinfo"
)

// downwardAPI plays the kubelet's downward API volume for the pods the demo
// runs with data: it rewrites a pod's annotations file whenever the pod's
// annotations change (update is called for every change the pod watch
// sees), swapping the file's ..data link as the kubelet does
// (podinfo.WriteLikeKubelet). That is how a new request.data.autocrane.io
// reaches the pod's datadeployer; a real kubelet takes up to about a
// minute, this one a moment.
type downwardAPI struct {
	mu      sync.Mutex
	latest  map[string]*corev1.Pod       // pod name -> the newest copy seen
	dirs    map[string]string            // pod name -> its podinfo directory
	written map[string]map[string]string // pod name -> annotations in its file
	err     error                        // the first failed write
}

func newDownwardAPI() *downwardAPI {
	return &downwardAPI{latest: map[string]*corev1.Pod{}, dirs: map[string]string{}, written: map[string]map[string]string{}}
}

// update takes a newer copy of a pod, in the API server's order, and
// rewrites its file if the pod is served and its annotations changed.
func (d *downwardAPI) update(pod *corev1.Pod) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.latest[pod.Name] = pod
	d.writeLocked(pod.Name)
}

// serve starts keeping pod's annotations file in dir current, and writes
// it now, from the newest of the watch's copy and pod.
func (d *downwardAPI) serve(pod *corev1.Pod, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dirs[pod.Name] = dir
	if d.latest[pod.Name] == nil {
		d.latest[pod.Name] = pod.DeepCopy()
	}
	d.writeLocked(pod.Name)
	return d.err
}

// forget stops serving a pod.
func (d *downwardAPI) forget(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.dirs, name)
	delete(d.written, name)
	delete(d.latest, name)
}

func (d *downwardAPI) writeLocked(name string) {
	dir, ok := d.dirs[name]
	pod := d.latest[name]
	if !ok || pod == nil {
		return
	}
	if written, ok := d.written[name]; ok && maps.Equal(written, pod.Annotations) {
		return
	}
	if err := podinfo.WriteLikeKubelet(dir, "annotations", pod.Annotations); err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("write the annotations of pod %s: %w", name, err)
		}
		return
	}
	d.written[name] = maps.Clone(pod.Annotations)
	if d.written[name] == nil {
		d.written[name] = map[string]string{}
	}
}

// check is the first write that failed, if any.
func (d *downwardAPI) check() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}
