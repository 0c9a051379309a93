package datarollout

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// TestSetup registers everything with a manager that is never started (the
// API server address is closed): option checks, metrics, index and
// controllers. Running it against an API server is the envtest suite's job.
func TestSetup(t *testing.T) {
	newManager := func() ctrl.Manager {
		mapper := meta.NewDefaultRESTMapper(nil)
		mapper.Add(corev1.SchemeGroupVersion.WithKind("Pod"), meta.RESTScopeNamespace)
		mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
		mgr, err := ctrl.NewManager(&rest.Config{Host: "http://127.0.0.1:1"}, ctrl.Options{
			Metrics:        server.Options{BindAddress: "0"},
			MapperProvider: func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		return mgr
	}
	tests := map[string]struct {
		opts    Options
		wantErr string
	}{
		"defaults":            {opts: Options{StateNamespace: "autocrane-system", Registerer: prometheus.NewRegistry()}},
		"no state namespace":  {opts: Options{Registerer: prometheus.NewRegistry()}, wantErr: "state namespace"},
		"no registerer":       {opts: Options{StateNamespace: "autocrane-system"}, wantErr: "metrics registerer"},
		"a too short poll":    {opts: Options{StateNamespace: "x", Registerer: prometheus.NewRegistry(), PollInterval: 10e6}, wantErr: "shorter than 1s"},
		"a negative deadline": {opts: Options{StateNamespace: "x", Registerer: prometheus.NewRegistry(), ProgressDeadline: -1}, wantErr: "negative"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Setup(t.Context(), newManager(), tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.poll != DefaultPollInterval || c.deadline != DefaultProgressDeadline || c.stateNS != "autocrane-system" {
				t.Errorf("defaults not applied: %+v", c)
			}
		})
	}
}
