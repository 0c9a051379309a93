package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/autocrane/autocrane/spec"
)

// WatchdogHelp is the manual of "autocrane watchdog".
const WatchdogHelp = `Usage:
  autocrane watchdog get POD [-n NAMESPACE] [-o table|json|yaml]
  autocrane watchdog post POD --name NAME --level LEVEL [--message TEXT] [-n NAMESPACE]

get prints a pod's watchdogs: each declared probe, each recorded status
(LEVEL, since when, and why), and the pod's health label.

post records the status of watchdog NAME on the pod, as an agent outside
the pod would (level info, warning or error). It patches that one
annotation and nothing else. When the level is unchanged it keeps the
time the level was entered and only updates the message; when nothing
changes it writes nothing. The API server allows it only to subjects with
the autocrane-watchdog-poster role (or AutoCrane itself): see
docs/ownership.md.

Both use the kubeconfig like kubectl: --kubeconfig, then $KUBECONFIG, then
~/.kube/config, then the in-cluster service account.

Flags:
  -n, --namespace NAMESPACE   the pod's namespace (default: the kubeconfig's, else "default")
  --kubeconfig PATH           the kubeconfig to use
  -o, --output FORMAT         get: table (default), json or yaml
  --name NAME                 post: the watchdog's name (a DNS-1123 label)
  --level LEVEL               post: info, warning or error
  --message TEXT              post: why; printable ASCII, at most 256 bytes after clean-up
`

// WatchdogView is what "watchdog get" prints.
type WatchdogView struct {
	Namespace string          `json:"namespace"`
	Pod       string          `json:"pod"`
	Health    string          `json:"health,omitempty"`
	Watchdogs []WatchdogEntry `json:"watchdogs"`
}

// WatchdogEntry is one watchdog of a pod.
type WatchdogEntry struct {
	Name    string     `json:"name"`
	Probe   string     `json:"probe,omitempty"`
	Level   spec.Level `json:"level,omitempty"`
	Since   *time.Time `json:"since,omitempty"`
	Message string     `json:"message,omitempty"`
	// Raw holds a status value that does not parse.
	Raw string `json:"raw,omitempty"`
}

type watchdogFlags struct {
	kubeconfig, namespace, output, name, level, message string
}

// Watchdog runs "autocrane watchdog get|post"; args follow "watchdog".
func Watchdog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "get" && args[0] != "post") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, WatchdogHelp)
			return &UsageError{Err: flag.ErrHelp}
		}
		fmt.Fprint(stderr, WatchdogHelp)
		return &UsageError{Err: errors.New("want watchdog get POD or watchdog post POD")}
	}
	verb := args[0]
	f, pod, err := parseWatchdogFlags(verb, args[1:], stderr)
	if err != nil {
		return err
	}
	cfg, ns, err := loadKubeconfig(f.kubeconfig, f.namespace)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	if verb == "get" {
		return watchdogGet(ctx, cs, ns, pod, f.output, stdout)
	}
	return watchdogPost(ctx, cs, ns, pod, f, stdout)
}

func parseWatchdogFlags(verb string, args []string, stderr io.Writer) (watchdogFlags, string, error) {
	var f watchdogFlags
	fs := flag.NewFlagSet("watchdog "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, WatchdogHelp) }
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "")
	fs.StringVar(&f.namespace, "namespace", "", "")
	fs.StringVar(&f.namespace, "n", "", "")
	if verb == "get" {
		fs.StringVar(&f.output, "output", "table", "")
		fs.StringVar(&f.output, "o", "table", "")
	} else {
		fs.StringVar(&f.name, "name", "", "")
		fs.StringVar(&f.level, "level", "", "")
		fs.StringVar(&f.message, "message", "", "")
	}
	// Allow the pod name before or after the flags, like kubectl.
	var pod string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		pod, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return f, "", &UsageError{Err: err}
	}
	if pod == "" && fs.NArg() == 1 {
		pod = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return f, "", usagef(stderr, "unexpected arguments %q", fs.Args())
	}
	if pod == "" {
		return f, "", usagef(stderr, "name the pod: autocrane watchdog %s POD", verb)
	}
	switch {
	case verb == "get" && f.output != "table" && f.output != "json" && f.output != "yaml":
		return f, "", usagef(stderr, "-o %q: want table, json or yaml", f.output)
	case verb == "post" && f.name == "":
		return f, "", usagef(stderr, "--name is required")
	case verb == "post" && len(validation.IsDNS1123Label(f.name)) > 0:
		return f, "", usagef(stderr, "--name %q: %s", f.name, strings.Join(validation.IsDNS1123Label(f.name), "; "))
	case verb == "post":
		if _, err := spec.ParseLevel(f.level); err != nil {
			return f, "", usagef(stderr, "--level: %v", err)
		}
	}
	return f, pod, nil
}

func usagef(stderr io.Writer, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	fmt.Fprintf(stderr, "autocrane watchdog: %v\n", err)
	return &UsageError{Err: err}
}

func loadKubeconfig(path, namespace string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: namespace}})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig namespace: %w", err)
	}
	return cfg, ns, nil
}

// WatchdogsOf reads a pod's watchdogs: its probes and recorded statuses.
func WatchdogsOf(pod *corev1.Pod) WatchdogView {
	v := WatchdogView{Namespace: pod.Namespace, Pod: pod.Name, Health: pod.Labels[spec.LabelHealth]}
	entries := map[string]*WatchdogEntry{}
	entry := func(name string) *WatchdogEntry {
		if entries[name] == nil {
			entries[name] = &WatchdogEntry{Name: name}
		}
		return entries[name]
	}
	for k, val := range pod.Annotations {
		if name, ok := strings.CutPrefix(k, spec.PrefixProbe); ok {
			entry(name).Probe = val
		}
		if name, ok := strings.CutPrefix(k, spec.PrefixWatchdogStatus); ok {
			e := entry(name)
			st, err := spec.ParseWatchdogStatus(val)
			if err != nil {
				e.Raw = val
				continue
			}
			since := st.Time
			e.Level, e.Since, e.Message = st.Level, &since, st.Message
		}
	}
	for _, name := range slices.Sorted(maps.Keys(entries)) {
		v.Watchdogs = append(v.Watchdogs, *entries[name])
	}
	return v
}

func watchdogGet(ctx context.Context, cs kubernetes.Interface, ns, name, output string, stdout io.Writer) error {
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	view := WatchdogsOf(pod)
	switch output {
	case "json":
		b, err := json.MarshalIndent(view, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(view)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	health := view.Health
	if health == "" {
		health = "<none>"
	}
	fmt.Fprintf(stdout, "pod %s/%s  health: %s\n", ns, name, health)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WATCHDOG\tLEVEL\tSINCE\tMESSAGE\tPROBE")
	for _, e := range view.Watchdogs {
		level, since, msg := string(e.Level), "", e.Message
		if e.Since != nil {
			since = e.Since.Format(time.RFC3339)
		}
		if e.Raw != "" {
			level, msg = "?", "unparsable: "+e.Raw
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, dash(level), dash(since), dash(msg), dash(e.Probe))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func watchdogPost(ctx context.Context, cs kubernetes.Interface, ns, name string, f watchdogFlags, stdout io.Writer) error {
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get pod %s/%s: %w", ns, name, err)
	}
	key := spec.PrefixWatchdogStatus + f.name
	level, _ := spec.ParseLevel(f.level)
	want := PostedStatus(pod.Annotations[key], level, f.message, time.Now())
	if want == pod.Annotations[key] {
		fmt.Fprintf(stdout, "pod/%s watchdog %s unchanged (%s)\n", name, f.name, want)
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: want}}})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("record watchdog %s on pod %s/%s: %w", f.name, ns, name, err)
	}
	fmt.Fprintf(stdout, "pod/%s watchdog %s: %s\n", name, f.name, want)
	return nil
}

// PostedStatus is the status value "watchdog post" writes over current:
// the level's start time is kept while the level stays the same.
func PostedStatus(current string, level spec.Level, message string, now time.Time) string {
	st := spec.WatchdogStatus{Level: level, Time: now, Message: message}
	if old, err := spec.ParseWatchdogStatus(current); err == nil && old.Level == level {
		st.Time = old.Time
	}
	return st.String()
}
