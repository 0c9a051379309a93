package envtest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
)

// writeCounter counts the manager's write requests (anything but GET, LIST
// and WATCH) to pods and their subresources, by namespace: a counting
// client on the manager's own connection to the API server.
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			// /api/v1/namespaces/NS/pods[/NAME[/SUB]]
			parts := strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")
			if len(parts) >= 5 && parts[0] == "api" && parts[2] == "namespaces" && parts[4] == "pods" {
				c.mu.Lock()
				if c.counts == nil {
					c.counts = map[string]int{}
				}
				c.counts[parts[3]]++
				c.mu.Unlock()
			}
		}
		return rt.RoundTrip(req)
	})
}

// in is the number of pod writes so far in namespace ns.
func (c *writeCounter) in(ns string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[ns]
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// dialRecorder records each address the prober dials, then dials it.
type dialRecorder struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialRecorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var dialer net.Dialer
	return dialer.DialContext(ctx, network, addr)
}

// hostsSince are the hosts dialled after the first n dials.
func (d *dialRecorder) hostsSince(n int) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for _, a := range d.addrs[min(n, len(d.addrs)):] {
		host, _, _ := net.SplitHostPort(a)
		out[host]++
	}
	return out
}

func (d *dialRecorder) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.addrs)
}
