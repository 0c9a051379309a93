package cli

import (
	"strconv"
	"strings"

	"github.com/autocrane/autocrane/injector"
)

// InjectSummary is inject's one-line description, for the binary's list of
// subcommands.
const InjectSummary = "print manifests with AutoCrane's sidecars injected, as the webhook would inject them"

// InjectHelp returns inject's manual, which -h and --help print. The
// defaults it states are read from injector.DefaultConfig.
func InjectHelp() string {
	def := injector.DefaultConfig()
	return strings.NewReplacer(
		"{{image}}", strconv.Quote(def.DataDeployerImage),
		"{{healthzImage}}", strconv.Quote(def.WatchdogHealthzImage),
		"{{mode}}", strconv.Quote(string(def.SidecarMode)),
		"{{ddPort}}", strconv.Itoa(int(def.DataDeployerPort)),
		"{{whPort}}", strconv.Itoa(int(def.WatchdogHealthzPort)),
		"{{pullPolicy}}", string(def.ImagePullPolicy),
	).Replace(injectHelp)
}

const injectHelp = `Usage: autocrane inject -f <path|-> [flags]

Print Kubernetes manifests with AutoCrane's sidecars injected, exactly as
AutoCrane's mutating webhook injects them into the pods those manifests
create. Review the result, or apply it where the webhook does not run:

    autocrane inject -f web.yaml | kubectl apply -f -
    kubectl get deployment web -o yaml | autocrane inject -f - | kubectl diff -f -

INPUT AND OUTPUT

inject reads YAML documents separated by "---" lines, or JSON objects (when
the input's first non-space character is "{"). It writes YAML documents to
stdout, separated by "---" lines, in input order. For every

    Pod (v1)                                     the pod itself
    Deployment, StatefulSet, DaemonSet,
      ReplicaSet (apps, any version)             spec.template
    Job (batch, any version)                     spec.template
    CronJob (batch, any version)                 spec.jobTemplate.spec.template

it runs the webhook's own code on that pod template and applies the
webhook's JSON patch to the template as written, so everything else in the
document stays, including fields that AutoCrane's Kubernetes types do not
know. The items of a List (v1) are handled the same way. Every other kind
(Service, ConfigMap, Namespace, ...) passes through unchanged. Empty
documents are dropped. YAML is read as kubectl reads it (YAML 1.1): unquoted
yes, no, on, off, y and n are booleans, so quote such names and values.

Every document is re-encoded: keys come out sorted alphabetically and
comments are dropped, also in documents that pass through. Running inject on
its own output gives the same output, byte for byte.

NAMESPACE

A pod takes defaults (store.autocrane.io/url and the other keys the docs mark
as namespace defaults) and its opt-in (the autocrane.io/inject label) from
its namespace. An object's namespace is its metadata.namespace, or "default"
when it has none. inject reads that namespace's labels and annotations from
the first of:

    1. the Namespace (v1) document of that name in the input, from any file;
       if there are several, the last one;
    2. the --namespace-file, whatever its name;
    3. otherwise a namespace labelled autocrane.io/inject=enabled, with no
       annotations: inject treats every object as opted in, as the webhook
       does in a namespace with injection enabled. A pod template labelled
       autocrane.io/inject=disabled is still left as it is.

Objects in kube-system, kube-public and kube-node-lease pass through
unchanged, whatever their namespace says: the webhook never injects there.
The webhook also skips AutoCrane's own namespace (the manager's --namespace),
which inject cannot know.

ERRORS

An object whose AutoCrane keys are invalid is an error that names the file,
the document (counted from 1 in each file, as separated by "---" lines; items
of a List as items[I], from 0), the object, and every bad key, one per line,
with its field path from the object's root:

    web.yaml: document 2: Deployment default/web:
      spec.template.metadata.annotations[store.autocrane.io/url]: Invalid value: ...

(all on one line). Keys that are namespace defaults are named by the
namespace's path when the bad value came from the namespace:
namespace[NAME].metadata.annotations[KEY].

Every document is checked before inject gives up. On any error inject writes
nothing to stdout, so that a pipe into kubectl apply applies nothing, and
exits non-zero.

FLAGS

Flags take one dash or two, and their value after a space or "=".

    -f <path|->, --filename <path|->
        The manifest file to read; "-" reads stdin. Required. Repeat it to
        read several files in order, as one stream: output follows the same
        order, and a Namespace document in one file applies to objects in
        the others. stdin can be read once.

    --sidecar-mode <native|classic>
        How to inject the datadeployer into a pod that does not choose with
        the inject.autocrane.io/sidecar-mode annotation (on the pod, or as
        its namespace's default). native: one init container with
        restartPolicy: Always, a native sidecar (Kubernetes 1.29 and newer;
        Jobs still complete). classic: an init container plus a regular
        sidecar container, for older clusters. Give the mode the manager
        uses on your cluster: it uses native on Kubernetes 1.29 and newer.
        Default: {{mode}}.

    --datadeployer-image <image>
        The image of the injected datadeployer containers.
        Default: {{image}}.

    --watchdoghealthz-image <image>
        The image of the injected watchdoghealthz canary sidecar.
        Default: {{healthzImage}}.

    --datadeployer-port <port>
        The port the datadeployer listens on in the pod's network namespace,
        from 1 to 65535, other than --watchdoghealthz-port. No app container
        of an injected pod may declare it. Default: {{ddPort}}.

    --watchdoghealthz-port <port>
        The port the watchdoghealthz canary sidecar listens on, from 1 to
        65535, other than --datadeployer-port. No app container of an
        injected pod may declare it. Default: {{whPort}}.

    --image-pull-policy <Always|IfNotPresent|Never>
        The image pull policy of the injected containers.
        Default: {{pullPolicy}}.

    --namespace-file <path>
        A Namespace, in YAML or JSON, whose labels and annotations stand for
        the namespace of every object whose namespace has no Namespace
        document in the input (see NAMESPACE). Default: none.

    -h, --help
        Print this manual to stderr.

Give the values of the manager's flags of the same names, so that the output
is what the webhook injects; for the manager's --sidecar-mode=auto, give the
mode it picks for your cluster. The injected containers get the injector's
default resources, over which a pod's resources.autocrane.io/* annotations
are merged as usual.
`
