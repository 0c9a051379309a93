package datarollout

import (
	"context"
	"fmt"

	"github.com/autocrane/autocrane/spec"
)

// InitialRequests gives the request.data.autocrane.io/NAME values a new pod
// starts with: for each of its data deployments, its line's last known good
// version. Deployments whose line has none yet are left out: the rollout
// gives them a version in waves. The mutating webhook calls it at
// admission, on every replica, with the pod parsed by spec.ParsePod (the
// namespace's store URL default applied).
//
// It reads the state ConfigMaps from this replica's cache, so a version
// promoted a moment ago may not be seen yet; the leader then moves the pod
// on. The first call after start waits for the cache to sync, within ctx.
// An error means the cache could not be read: admit the pod without
// requests, the leader gives it its version.
func (c *Controller) InitialRequests(ctx context.Context, namespace string, pod spec.Pod) (map[string]spec.DataRequest, error) {
	if pod.Store.URL == "" || len(pod.Deployments) == 0 {
		return nil, nil
	}
	var out map[string]spec.DataRequest
	for _, d := range pod.Deployments {
		line := Line{Namespace: namespace, StoreURL: pod.Store.URL, Source: d.Source}
		cm, err := c.readState(ctx, line.Name())
		if err != nil {
			return nil, fmt.Errorf("initial data request of deployment %s: %w", d.Name, err)
		}
		if cm == nil {
			continue
		}
		st, err := ParseState(cm.Data[KeyState], line)
		if err != nil || st.LKG == nil {
			continue
		}
		if out == nil {
			out = map[string]spec.DataRequest{}
		}
		out[d.Name] = spec.DataRequest{Source: d.Source, ID: st.LKG.ID, Digest: st.LKG.Digest}
	}
	return out, nil
}
