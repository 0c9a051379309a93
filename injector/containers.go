package injector

import (
	"fmt"
	"strings"

	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// desired is everything the injector wants in a pod, by name.
type desired struct {
	initContainers []corev1.Container
	containers     []corev1.Container
	volumes        []corev1.Volume
	// appMounts go into every app container.
	appMounts   []corev1.VolumeMount
	annotations map[string]string
}

func (d desired) empty() bool {
	return len(d.initContainers) == 0 && len(d.containers) == 0 && len(d.volumes) == 0
}

// build computes what to inject from the pod's wishes and the config.
// resources are already merged and checked.
func build(want spec.Pod, cfg Config, mode spec.SidecarMode, res map[spec.Component]corev1.ResourceRequirements) desired {
	var d desired
	needPodInfo := false
	if len(want.Deployments) > 0 {
		needPodInfo = true
		d.volumes = append(d.volumes, corev1.Volume{
			Name:         VolumeData,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		})
		d.appMounts = append(d.appMounts, corev1.VolumeMount{Name: VolumeData, MountPath: want.Store.Location, ReadOnly: true})
		switch mode {
		case spec.SidecarClassic:
			d.initContainers = append(d.initContainers, dataDeployer(ContainerDataDeployerInit, "init", want, cfg, res))
			d.containers = append(d.containers, dataDeployer(ContainerDataDeployer, "sidecar", want, cfg, res))
		default:
			c := dataDeployer(ContainerDataDeployer, "native-sidecar", want, cfg, res)
			c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
			c.StartupProbe = httpProbe("/readyz", cfg.DataDeployerPort, defaultStartupPeriodSeconds, defaultStartupFailures)
			d.initContainers = append(d.initContainers, c)
		}
		if want.Store.TokenSecret != "" {
			d.volumes = append(d.volumes, corev1.Volume{Name: VolumeStoreToken, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  want.Store.TokenSecret,
				Items:       []corev1.KeyToPath{{Key: "token", Path: "token"}},
				DefaultMode: ptr.To[int32](0o444),
			}}})
		}
	}
	if want.Healthz != nil {
		needPodInfo = true
		d.containers = append(d.containers, watchdogHealthz(*want.Healthz, cfg, res))
	}
	if needPodInfo {
		d.volumes = append(d.volumes,
			corev1.Volume{Name: VolumePodInfo, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				DefaultMode: ptr.To[int32](corev1.DownwardAPIVolumeSourceDefaultMode),
				Items: []corev1.DownwardAPIVolumeFile{
					{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations"}},
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
				},
			}}},
			corev1.Volume{Name: VolumeNoToken, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse("1Ki")),
			}}},
		)
	}
	return d
}

func dataDeployer(name, mode string, want spec.Pod, cfg Config, res map[spec.Component]corev1.ResourceRequirements) corev1.Container {
	names := make([]string, len(want.Deployments))
	for i, dd := range want.Deployments {
		names[i] = dd.Name
	}
	c := corev1.Container{
		Name:    name,
		Image:   cfg.DataDeployerImage,
		Command: []string{DefaultDataDeployerCommand},
		Args: []string{
			"--mode=" + mode,
			"--repository-url=" + want.Store.URL,
			"--location=" + want.Store.Location,
			"--deployments=" + strings.Join(names, ","),
			"--annotations-file=" + AnnotationsFile,
			fmt.Sprintf("--listen=:%d", cfg.DataDeployerPort),
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumeData, MountPath: want.Store.Location},
			{Name: VolumePodInfo, MountPath: PodInfoDir, ReadOnly: true},
			{Name: VolumeNoToken, MountPath: serviceAccountDir, ReadOnly: true},
		},
		Resources: res[spec.ComponentDataDeployer],
	}
	if want.Store.TokenSecret != "" {
		c.Args = append(c.Args, "--token-file="+StoreTokenDir+"/token")
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: VolumeStoreToken, MountPath: StoreTokenDir, ReadOnly: true})
	}
	if mode != "init" {
		c.Ports = []corev1.ContainerPort{{Name: "ac-data", ContainerPort: cfg.DataDeployerPort, Protocol: corev1.ProtocolTCP}}
	}
	finish(&c, cfg)
	return c
}

func watchdogHealthz(h spec.Healthz, cfg Config, res map[spec.Component]corev1.ResourceRequirements) corev1.Container {
	args := []string{
		"--annotations-file=" + AnnotationsFile,
		fmt.Sprintf("--min-ready-seconds=%d", h.MinReadySeconds),
		fmt.Sprintf("--listen=:%d", cfg.WatchdogHealthzPort),
	}
	if h.AlwaysHealthyAfterSeconds != nil {
		args = append(args, fmt.Sprintf("--always-healthy-after-seconds=%d", *h.AlwaysHealthyAfterSeconds))
	}
	c := corev1.Container{
		Name:           ContainerWatchdogHealthz,
		Image:          cfg.WatchdogHealthzImage,
		Command:        []string{DefaultWatchdogHealthzCmd},
		Args:           args,
		Ports:          []corev1.ContainerPort{{Name: "ac-healthz", ContainerPort: cfg.WatchdogHealthzPort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: httpProbe("/healthz", cfg.WatchdogHealthzPort, 2, 1),
		VolumeMounts: []corev1.VolumeMount{
			{Name: VolumePodInfo, MountPath: PodInfoDir, ReadOnly: true},
			{Name: VolumeNoToken, MountPath: serviceAccountDir, ReadOnly: true},
		},
		Resources: res[spec.ComponentWatchdogHealthz],
	}
	finish(&c, cfg)
	return c
}

// httpProbe spells out every field the API server would default, so that the
// stored pod equals what Inject produces and re-injecting it is a no-op.
func httpProbe(path string, port, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		TimeoutSeconds:   1,
		PeriodSeconds:    period,
		SuccessThreshold: 1,
		FailureThreshold: failures,
	}
}

// finish applies what every injected container shares: the restricted Pod
// Security profile, the pull policy, and the fields the API server defaults.
func finish(c *corev1.Container, cfg Config) {
	c.ImagePullPolicy = cfg.ImagePullPolicy
	c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	c.SecurityContext = &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](DefaultUID),
		RunAsGroup:               ptr.To[int64](DefaultUID),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// resources merges each component's override over the config's defaults,
// resource by resource, and checks that no request exceeds its limit.
func resources(want spec.Pod, cfg Config) (map[spec.Component]corev1.ResourceRequirements, error) {
	out := map[spec.Component]corev1.ResourceRequirements{}
	var errs fieldErrors
	for _, c := range spec.Components {
		def := cfg.Resources[c]
		base := *def.DeepCopy()
		if o, ok := want.Resources[c]; ok {
			base.Requests = merge(base.Requests, o.Requests)
			base.Limits = merge(base.Limits, o.Limits)
		}
		for name, req := range base.Requests {
			if lim, ok := base.Limits[name]; ok && req.Cmp(lim) > 0 {
				path := want.ResourcePaths[c]
				if path == nil {
					path = spec.AnnotationPath(spec.PrefixResources + string(c))
				}
				errs = append(errs, invalidf(path, fmt.Sprintf("%s=%s", name, req.String()),
					"the %s request %s exceeds its limit %s (defaults merged with the override)", name, req.String(), lim.String()))
			}
		}
		out[c] = base
	}
	return out, errs.err()
}

func merge(base, over corev1.ResourceList) corev1.ResourceList {
	if len(over) == 0 {
		return base
	}
	if base == nil {
		base = corev1.ResourceList{}
	}
	for k, v := range over {
		base[k] = v
	}
	return base
}
