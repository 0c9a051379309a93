package config

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/autocrane/autocrane/test/envtest/framework"
)

// certManagerVersion is the release whose CRDs the cert-manager mode is
// written against (go.mod requires the same module).
const certManagerVersion = "v1.21.2"

// TestApply applies each overlay to a real kube-apiserver with
// cert-manager's CRDs installed, with strict server-side field validation
// (an unknown or misspelt field in any object, a Certificate's included,
// is an error), then asks the API server's authorizer whether the
// manager's service account may do what managerPermissions lists. No
// controller runs: nothing here checks that the pods start (the e2e tests
// do). The Prometheus component is left out: its CRDs are not available.
func TestApply(t *testing.T) {
	kubectlPath(t) // builds the assets if needed
	if os.Getenv(framework.AssetsEnvVar) == "" {
		t.Setenv(framework.AssetsEnvVar, filepath.Dir(kubectlPath(t)))
	}
	ctx := t.Context()
	env, err := framework.Start(ctx, framework.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	})

	crds := filepath.Join(moduleDir(t, "github.com/cert-manager/cert-manager@"+certManagerVersion), "deploy", "crds")
	kubectl(t, env, "apply", "--server-side", "-f", crds)
	kubectl(t, env, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")

	withNetworkPolicy := tempOverlay(t, "resources: [%[1]s/default]\ncomponents: [%[1]s/networkpolicy]\n")

	// The cert-manager mode first: the self-managed overlays add rights
	// that applying another overlay does not take away.
	// The first apply is the one docs/install.md shows (client-side).
	serverSide := []string{"--server-side", "--force-conflicts"}
	for _, step := range []struct {
		name, dir string
		mode      certMode
		flags     []string
	}{
		{"default", "default", certManager, nil},
		{"e2e", "e2e", certManager, serverSide},
		{"default+networkpolicy", withNetworkPolicy, certManager, serverSide},
		{"selfmanaged", "selfmanaged", selfManaged, serverSide},
		{"e2e-selfmanaged", "e2e-selfmanaged", selfManaged, serverSide},
	} {
		t.Run(step.name, func(t *testing.T) {
			kubectl(t, env, append([]string{"apply", "--validate=strict", "-k", step.dir}, step.flags...)...)
			for r, want := range managerPermissions(step.mode) {
				if got := authorized(t, env, r); got != want {
					t.Errorf("%+v: the API server says allowed %v, want %v", r, got, want)
				}
			}
		})
	}
}

// kubectl runs kubectl against env, failing the test on an error.
func kubectl(t *testing.T, env *framework.Env, args ...string) {
	t.Helper()
	// The error names the command and quotes its stderr.
	if _, _, err := env.Kubectl(t.Context(), nil, args...); err != nil {
		t.Fatal(err)
	}
}

// authorized asks the API server whether the manager's service account may
// make request r.
func authorized(t *testing.T, env *framework.Env, r access) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + namespace + ":autocrane-manager",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: r.verb, Group: r.group, Namespace: r.namespace, Name: r.name,
		},
	}}
	attrs := sar.Spec.ResourceAttributes
	attrs.Resource, attrs.Subresource, _ = strings.Cut(r.resource, "/")
	if err := env.Client.Create(t.Context(), sar); err != nil {
		t.Fatalf("SubjectAccessReview %+v: %v", r, err)
	}
	return sar.Status.Allowed
}

// moduleDir downloads module@version through the Go module proxy (or finds
// it in the module cache) and returns its directory.
func moduleDir(t *testing.T, moduleAtVersion string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", moduleAtVersion)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go mod download %s: %v\n%s%s", moduleAtVersion, err, stdout.String(), stderr.String())
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", moduleAtVersion, err, mod.Error)
	}
	return mod.Dir
}
