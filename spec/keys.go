package spec

import "strings"

// Domain is the DNS suffix that marks a label or annotation key as AutoCrane's.
const Domain = "autocrane.io"

// Opt-in.
const (
	// LabelInject on a namespace or a pod turns injection on ("enabled") or
	// off ("disabled"). The pod's label overrides the namespace's.
	LabelInject = "autocrane.io/inject"
	// InjectEnabled and InjectDisabled are the values of LabelInject.
	InjectEnabled  = "enabled"
	InjectDisabled = "disabled"
)

// Keys users set on pods (usually on a pod template).
const (
	// PrefixProbe + NAME declares watchdog NAME: POD_IP:PORT/PATH.
	PrefixProbe = "probe.autocrane.io/"
	// KeyStoreURL is where the data repository is: http(s)://host[:port].
	KeyStoreURL = "store.autocrane.io/url"
	// KeyStoreLocation is where deployed data appears inside app containers.
	KeyStoreLocation = "store.autocrane.io/location"
	// KeyStoreTokenSecret names a Secret in the pod's namespace whose key
	// "token" is the data repository's bearer token.
	KeyStoreTokenSecret = "store.autocrane.io/token-secret"
	// PrefixData + NAME is data deployment NAME fed from a source (a source
	// name), or, on the data repository's pod, source NAME (KIND:LOCATION).
	PrefixData = "data.autocrane.io/"
	// KeyMinReadySeconds injects the watchdoghealthz canary sidecar.
	KeyMinReadySeconds = "healthz.autocrane.io/min-ready-seconds"
	// KeyAlwaysHealthyAfterSeconds stops the canary gating after this long.
	KeyAlwaysHealthyAfterSeconds = "healthz.autocrane.io/always-healthy-after-seconds"
	// KeySidecarMode picks how the datadeployer is injected: native or classic.
	KeySidecarMode = "inject.autocrane.io/sidecar-mode"
	// PrefixResources + COMPONENT overrides the resources of an injected
	// container (datadeployer, watchdoghealthz).
	PrefixResources = "resources.autocrane.io/"
)

// Keys AutoCrane writes (state). Only AutoCrane's identity may write them.
const (
	// PrefixWatchdogStatus + NAME holds LEVEL/TIMESTAMP/MESSAGE.
	PrefixWatchdogStatus = "status.autocrane.io/"
	// LabelHealth is the worst level over the pod's watchdogs.
	LabelHealth = "status.autocrane.io/health"
	// PrefixDataRequest + NAME is the version the controller wants a pod to hold.
	PrefixDataRequest = "request.data.autocrane.io/"
	// PrefixDataStatus + NAME is the version a pod holds.
	PrefixDataStatus = "status.data.autocrane.io/"
	// AnnotationInjected records what the injector added.
	AnnotationInjected = "autocrane.io/injected"
)

// AnnotationDefaultContainer is kubectl's key for the container that
// kubectl logs and exec pick when none is named.
const AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"

// Component names an injected container whose resources users can override.
type Component string

// The injected components.
const (
	ComponentDataDeployer    Component = "datadeployer"
	ComponentWatchdogHealthz Component = "watchdoghealthz"
)

// Components lists every Component, in a fixed order.
var Components = []Component{ComponentDataDeployer, ComponentWatchdogHealthz}

// KeyInfo documents one key of the contract. It is the one table of keys that
// the docs and "did you mean" suggestions are built from.
type KeyInfo struct {
	// Key is the full key, or the prefix when Prefix is true.
	Key string
	// Prefix is true when the key is Key followed by a user-chosen name.
	Prefix bool
	// Label is true for labels, false for annotations.
	Label bool
	// State is true for keys only AutoCrane writes.
	State bool
	// NamespaceDefault is true when a namespace annotation supplies a default.
	NamespaceDefault bool
	// Form is the accepted form of the value.
	Form string
	// Doc says what the key does.
	Doc string
}

// KnownKeys is the contract's table of keys.
var KnownKeys = []KeyInfo{
	{Key: LabelInject, Label: true, Form: "enabled | disabled", Doc: "on a namespace: send every pod to the injector, or none; on a pod: override the namespace"},
	{Key: LabelRole, Label: true, Form: RoleDataRepository, Doc: "marks the data repository's pods, the only pods that may declare sources"},
	{Key: PrefixProbe, Prefix: true, Form: "POD_IP:PORT/PATH or https://POD_IP:PORT/PATH", Doc: "declares watchdog NAME, probed on the pod's own IP"},
	{Key: KeyStoreURL, NamespaceDefault: true, Form: "http(s)://host[:port][/path]", Doc: "where the data repository is"},
	{Key: KeyStoreTokenSecret, NamespaceDefault: true, Form: "a Secret name (DNS-1123 subdomain) in the pod's namespace, with the key token", Doc: "the data repository's bearer token, mounted into the datadeployer only"},
	{Key: KeyStoreLocation, NamespaceDefault: true, Form: "a clean absolute path (default " + DefaultLocation + ")", Doc: "where deployed data appears inside every app container"},
	{Key: PrefixData, Prefix: true, Form: "a source name (DNS-1123 label), or KIND:LOCATION on the data repository's pod", Doc: "data deployment NAME fed from a source, or source NAME"},
	{Key: KeyMinReadySeconds, Form: "whole seconds, 0 to 86400", Doc: "inject the watchdoghealthz canary sidecar; the pod stays unready until its watchdogs were error-free this long"},
	{Key: KeyAlwaysHealthyAfterSeconds, Form: "whole seconds, 0 to 86400, not less than min-ready-seconds", Doc: "after this long the canary sidecar stops gating readiness"},
	{Key: KeySidecarMode, NamespaceDefault: true, Form: "native | classic", Doc: "inject the datadeployer as one native sidecar or as an init container plus a sidecar"},
	{Key: PrefixResources + string(ComponentDataDeployer), NamespaceDefault: true, Form: `JSON {"requests":{"cpu":"10m"},"limits":{"memory":"64Mi"}}`, Doc: "resources of the injected datadeployer, merged over the defaults"},
	{Key: PrefixResources + string(ComponentWatchdogHealthz), NamespaceDefault: true, Form: `JSON {"requests":{"cpu":"10m"},"limits":{"memory":"64Mi"}}`, Doc: "resources of the injected watchdoghealthz sidecar, merged over the defaults"},
	{Key: KeyWatchdogPeriodSeconds, Form: "whole seconds, 1 to 3600 (default 10)", Doc: "how often each watchdog of the pod is probed"},
	{Key: KeyWatchdogTimeoutSeconds, Form: "whole seconds, 1 to 3600, not more than the period (default 2)", Doc: "the deadline of one probe, from dial to the last byte read"},
	{Key: KeyWatchdogUnhealthyThreshold, Form: "1 to 100 (default 3)", Doc: "failed probes in a row that turn a watchdog to error"},
	{Key: KeyWatchdogHealthyThreshold, Form: "1 to 100 (default 2)", Doc: "successful probes in a row that turn an erroring watchdog healthy"},
	{Key: KeyWatchdogEvict, Form: "true | false (default true)", Doc: "false opts the pod out of eviction; its health is still recorded"},
	{Key: KeyWatchdogEvictAfter, Form: "a duration, 0s to 24h (default 30s)", Doc: "how long the pod's health must stay error before it is evicted"},
	{Key: KeyWatchdogMaxInFlight, Form: "1 to 1000 (default 1)", Doc: "evictions per owner whose replacement is not Ready yet"},
	{Key: KeyRolloutWaves, Form: "counts and percentages, growing, ending at 100% (default " + DefaultRolloutWaves + ")", Doc: "the waves in which a new data version reaches the pods of an owner"},
	{Key: KeyRolloutBakeSeconds, Form: "whole seconds, 0 to 86400 (default 300)", Doc: "how long a wave must stay error-free after its data went live"},
	{Key: PrefixWatchdogStatus, Prefix: true, State: true, Form: "LEVEL/TIMESTAMP/MESSAGE (LEVEL info, warning or error; TIMESTAMP RFC 3339 UTC)", Doc: "watchdog NAME's level and when it was entered"},
	{Key: LabelHealth, Label: true, State: true, Form: "info | warning | error | unknown", Doc: "worst level over the pod's watchdogs"},
	{Key: PrefixDataRequest, Prefix: true, State: true, Form: "SOURCE/VERSION/sha256:DIGEST", Doc: "the data version the controller wants this pod to hold"},
	{Key: PrefixDataStatus, Prefix: true, State: true, Form: "STATE/VERSION/DIGEST/SINCE/MESSAGE (STATE syncing, live or failed; - for none)", Doc: "the data version this pod holds, what its datadeployer is doing, and when the version went live"},
	{Key: AnnotationInjected, State: true, Form: "JSON", Doc: "what the injector added, and a hash of it"},
}

// IsAutoCraneKey reports whether a label or annotation key is in AutoCrane's
// domain: its prefix is autocrane.io or ends in .autocrane.io.
func IsAutoCraneKey(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	return prefix == Domain || strings.HasSuffix(prefix, "."+Domain)
}

// HasAutoCraneKey reports whether any key of m is in AutoCrane's domain.
func HasAutoCraneKey(m map[string]string) bool {
	for k := range m {
		if IsAutoCraneKey(k) {
			return true
		}
	}
	return false
}

// IsStateKey reports whether an annotation key is one AutoCrane writes
// (state), which users may not set.
func IsStateKey(key string) bool {
	return key == AnnotationInjected ||
		strings.HasPrefix(key, PrefixWatchdogStatus) ||
		strings.HasPrefix(key, PrefixDataRequest) ||
		strings.HasPrefix(key, PrefixDataStatus)
}
