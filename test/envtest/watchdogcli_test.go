package envtest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/autocrane/autocrane/cli"
	"github.com/autocrane/autocrane/spec"
)

// TestWatchdogCLIPostsThroughTheOwnershipRule runs "autocrane watchdog
// post" and "get" with users' kubeconfigs: a poster may record a watchdog,
// the prober counts it in the health label, and a user without the role
// is denied by the API server.
func TestWatchdogCLIPostsThroughTheOwnershipRule(t *testing.T) {
	ctx := t.Context()
	ownApplyRBAC(ctx, t)
	ns := suite.env.CreateNamespace(ctx, t, nil, nil)
	pod := ownCreatePod(ctx, t, ns, appPod("web", nil, nil))

	poster := newOwnUser(t, "cli-poster")
	_, posterConfig, err := suite.env.AddUser("cli-poster")
	if err != nil {
		t.Fatal(err)
	}
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(poster.name), poster.name)
	ownBindRole(ctx, t, ns, "ClusterRole", "autocrane-watchdog-poster", ownUserSubject(poster.name))
	ownWaitForAccess(ctx, t, poster.name, ns, spec.Domain, "watchdogs", "update")

	run := func(kubeconfig string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := cli.Watchdog(ctx, append(args, "--kubeconfig="+kubeconfig, "-n", ns), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := run(posterConfig, "post", "web", "--name", "disk", "--level", "error", "--message", "disk  full\n"); err != nil {
		t.Fatalf("post: %v: %s", err, out)
	}
	got := waitHealth(ctx, t, ns, pod.Name, string(spec.LevelError))
	st, err := spec.ParseWatchdogStatus(got.Annotations[spec.PrefixWatchdogStatus+"disk"])
	if err != nil || st.Level != spec.LevelError || st.Message != "disk full" {
		t.Fatalf("posted status %+v (%v)", st, err)
	}

	// Posting the same level keeps when it was entered.
	if out, err := run(posterConfig, "post", "web", "--name", "disk", "--level", "error", "--message", "still full"); err != nil {
		t.Fatalf("post again: %v: %s", err, out)
	}
	out, err := run(posterConfig, "get", "web", "-o", "json")
	if err != nil {
		t.Fatalf("get: %v: %s", err, out)
	}
	var view cli.WatchdogView
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("get -o json: %v: %s", err, out)
	}
	if view.Health != "error" || len(view.Watchdogs) != 1 || view.Watchdogs[0].Message != "still full" || !view.Watchdogs[0].Since.Equal(st.Time) {
		t.Errorf("get = %+v, want health error and disk still full since %s", view, st.Time)
	}

	// A user who may patch pods but holds no poster role is denied.
	plain := newOwnUser(t, "cli-plain")
	_, plainConfig, err := suite.env.AddUser("cli-plain")
	if err != nil {
		t.Fatal(err)
	}
	ownGrantPodWriter(ctx, t, ns, ownUserSubject(plain.name), plain.name)
	out, err = run(plainConfig, "post", "web", "--name", "disk", "--level", "info")
	if err == nil || !strings.Contains(err.Error(), "watchdogs.autocrane.io") {
		t.Fatalf("plain user's post: err %v, output %s; want a denial naming watchdogs.autocrane.io", err, out)
	}

	if out, err := run(posterConfig, "post", "web", "--name", "disk", "--level", "info", "--message", "cleaned"); err != nil {
		t.Fatalf("post info: %v: %s", err, out)
	}
	waitHealth(ctx, t, ns, pod.Name, string(spec.LevelInfo))
}
