package injector

import (
	"errors"
	"fmt"

	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Names of what the injector adds. They are reserved: a user container or
// volume with one of these names is an error, not a merge.
const (
	ContainerDataDeployer     = "autocrane-datadeployer"
	ContainerDataDeployerInit = "autocrane-datadeployer-init"
	ContainerWatchdogHealthz  = "autocrane-watchdoghealthz"

	VolumeData    = "autocrane-data"
	VolumePodInfo = "autocrane-podinfo"
	VolumeNoToken = "autocrane-no-token"
	// VolumeStoreToken holds the data repository's bearer token, from the
	// Secret store.autocrane.io/token-secret names, for the datadeployer.
	VolumeStoreToken = "autocrane-store-token"

	// DataDeployerWatchdogKey registers the datadeployer's /watchdog as
	// watchdog "autocrane-data" of pods with data deployments, unless the
	// user set that key.
	DataDeployerWatchdogKey = "probe.autocrane.io/autocrane-data"
)

// Paths inside the injected containers.
const (
	// PodInfoDir holds the downward API files "annotations" and "labels".
	PodInfoDir = "/etc/autocrane/podinfo"
	// AnnotationsFile is the pod's annotations, as the downward API writes them.
	AnnotationsFile = PodInfoDir + "/annotations"
	// StoreTokenDir holds the data repository's bearer token ("token") in
	// the datadeployer, when the pod names a token Secret.
	StoreTokenDir = "/etc/autocrane/store-token"
	// serviceAccountDir is masked in injected containers with an empty
	// volume, so they never get a token, even when the ServiceAccount
	// admission plugin runs again after this webhook.
	serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
)

// Defaults.
const (
	DefaultImage                = "autocrane:dev"
	DefaultDataDeployerPort     = 9780
	DefaultWatchdogHealthzPort  = 9781
	DefaultDataDeployerCommand  = "/usr/local/bin/datadeployer"
	DefaultWatchdogHealthzCmd   = "/usr/local/bin/watchdoghealthz"
	DefaultUID                  = 65532
	defaultStartupPeriodSeconds = 2
	// defaultStartupFailures gives the first sync ten minutes.
	defaultStartupFailures = 300
)

// Config is how the operator configures injection (manager flags). The zero
// value is not usable; start from DefaultConfig.
type Config struct {
	// DataDeployerImage and WatchdogHealthzImage are the images of the
	// injected containers. Default DefaultImage (one image has every program).
	DataDeployerImage    string
	WatchdogHealthzImage string
	// ImagePullPolicy of the injected containers. Default IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// SidecarMode is used when a pod does not choose. Default native; the
	// manager picks classic on API servers older than 1.29.
	SidecarMode spec.SidecarMode
	// DataDeployerPort and WatchdogHealthzPort are the ports the sidecars
	// listen on, inside the pod's network namespace. Defaults 9780 and 9781.
	DataDeployerPort    int32
	WatchdogHealthzPort int32
	// Resources are the default resources per injected component; a pod's
	// resources.autocrane.io/COMPONENT annotation is merged over them.
	Resources map[spec.Component]corev1.ResourceRequirements
}

// DefaultConfig returns the defaults every field documents.
func DefaultConfig() Config {
	return Config{
		DataDeployerImage:    DefaultImage,
		WatchdogHealthzImage: DefaultImage,
		ImagePullPolicy:      corev1.PullIfNotPresent,
		SidecarMode:          spec.SidecarNative,
		DataDeployerPort:     DefaultDataDeployerPort,
		WatchdogHealthzPort:  DefaultWatchdogHealthzPort,
		Resources: map[spec.Component]corev1.ResourceRequirements{
			spec.ComponentDataDeployer:    requirements("10m", "32Mi", "500m", "256Mi"),
			spec.ComponentWatchdogHealthz: requirements("5m", "16Mi", "100m", "64Mi"),
		},
	}
}

func requirements(cpuReq, memReq, cpuLim, memLim string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuReq), corev1.ResourceMemory: resource.MustParse(memReq)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLim), corev1.ResourceMemory: resource.MustParse(memLim)},
	}
}

// Validate reports a Config that cannot produce a valid pod.
func (c Config) Validate() error {
	var errs []error
	if c.DataDeployerImage == "" || c.WatchdogHealthzImage == "" {
		errs = append(errs, errors.New("images must not be empty"))
	}
	if _, err := spec.ParseSidecarMode(string(c.SidecarMode), nil); err != nil {
		errs = append(errs, fmt.Errorf("sidecar mode %q: must be native or classic", c.SidecarMode))
	}
	for _, p := range []int32{c.DataDeployerPort, c.WatchdogHealthzPort} {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("port %d: must be from 1 to 65535", p))
		}
	}
	if c.DataDeployerPort == c.WatchdogHealthzPort {
		errs = append(errs, fmt.Errorf("the datadeployer and watchdoghealthz ports must differ (both %d)", c.DataDeployerPort))
	}
	for _, comp := range spec.Components {
		rr, ok := c.Resources[comp]
		if !ok {
			errs = append(errs, fmt.Errorf("resources of %s: missing defaults", comp))
			continue
		}
		for name, req := range rr.Requests {
			if lim, ok := rr.Limits[name]; ok && req.Cmp(lim) > 0 {
				errs = append(errs, fmt.Errorf("resources of %s: the default %s request %s exceeds its limit %s", comp, name, req.String(), lim.String()))
			}
		}
	}
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("image pull policy %q: must be Always, IfNotPresent or Never", c.ImagePullPolicy))
	}
	return errors.Join(errs...)
}
