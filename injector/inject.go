package injector

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// InvalidError is returned for a pod that cannot be injected as asked. Errs
// name each offending field and say why.
type InvalidError struct{ Errs field.ErrorList }

func (e *InvalidError) Error() string { return e.Errs.ToAggregate().Error() }

type fieldErrors field.ErrorList

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &InvalidError{Errs: field.ErrorList(f)}
}

func invalidf(p *field.Path, value any, format string, args ...any) *field.Error {
	return field.Invalid(p, value, fmt.Sprintf(format, args...))
}

var (
	reservedContainers = []string{ContainerDataDeployer, ContainerDataDeployerInit, ContainerWatchdogHealthz}
	reservedVolumes    = []string{VolumeData, VolumePodInfo, VolumeNoToken, VolumeStoreToken}
	specPath           = field.NewPath("spec")
)

// Inject returns a copy of pod with what want asks for injected according
// to cfg. It first replaces or removes what the pod's autocrane.io/injected
// record lists, so calling it on its own output changes nothing. It returns
// an *InvalidError when the pod cannot be injected as asked.
func Inject(pod *corev1.Pod, want spec.Pod, cfg Config) (*corev1.Pod, error) {
	prev, ferr := spec.ParseInjected(pod.Annotations[spec.AnnotationInjected])
	if ferr != nil {
		return nil, &InvalidError{Errs: field.ErrorList{ferr}}
	}
	mode := want.SidecarMode
	if mode == "" {
		mode = cfg.SidecarMode
	}
	res, err := resources(want, cfg)
	if err != nil {
		return nil, err
	}
	d := build(want, cfg, mode, res)
	if err := check(pod, prev, d, want, cfg).err(); err != nil {
		return nil, err
	}

	out := pod.DeepCopy()
	s := &out.Spec
	rec := spec.Injected{Version: spec.InjectedVersion}
	s.InitContainers, rec.InitContainers = reconcile(s.InitContainers, prev.InitContainers, reservedContainers, d.initContainers, containerName)
	s.Containers, rec.Containers = reconcile(s.Containers, prev.Containers, reservedContainers, d.containers, containerName)
	s.Volumes, rec.Volumes = reconcile(s.Volumes, prev.Volumes, reservedVolumes, d.volumes, volumeName)
	app := ""
	for i := range s.Containers {
		c := &s.Containers[i]
		if slices.Contains(rec.Containers, c.Name) {
			continue
		}
		if app == "" {
			app = c.Name
		}
		c.VolumeMounts, rec.Mounts = reconcile(c.VolumeMounts, prev.Mounts, reservedVolumes, d.appMounts, mountName)
	}

	// The default container, and the datadeployer's watchdog, are ours to
	// set only when the user has not.
	_, userSet := out.Annotations[spec.AnnotationDefaultContainer]
	ownsDefault := slices.Contains(prev.Annotations, spec.AnnotationDefaultContainer)
	_, userProbe := out.Annotations[DataDeployerWatchdogKey]
	ownsProbe := slices.Contains(prev.Annotations, DataDeployerWatchdogKey)
	if d.empty() {
		if ownsDefault {
			delete(out.Annotations, spec.AnnotationDefaultContainer)
		}
		if ownsProbe {
			delete(out.Annotations, DataDeployerWatchdogKey)
		}
		delete(out.Annotations, spec.AnnotationInjected)
		return out, nil
	}
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	if app != "" && (ownsDefault || !userSet) {
		out.Annotations[spec.AnnotationDefaultContainer] = app
		rec.Annotations = []string{spec.AnnotationDefaultContainer}
	}
	// Data failures feed the watchdogs: the datadeployer's /watchdog turns
	// error while a sync keeps failing.
	switch {
	case len(want.Deployments) > 0 && (ownsProbe || !userProbe):
		out.Annotations[DataDeployerWatchdogKey] = fmt.Sprintf("%s:%d/watchdog", spec.PodIPPlaceholder, cfg.DataDeployerPort)
		rec.Annotations = append(rec.Annotations, DataDeployerWatchdogKey)
	case len(want.Deployments) == 0 && ownsProbe:
		delete(out.Annotations, DataDeployerWatchdogKey)
	}
	rec.Hash = hash(d, rec)
	out.Annotations[spec.AnnotationInjected] = rec.String()
	return out, nil
}

// check finds what makes injection impossible: user objects with reserved
// names, app ports the sidecars need, and a data location that overlaps an
// app volume mount.
func check(pod *corev1.Pod, prev spec.Injected, d desired, want spec.Pod, cfg Config) fieldErrors {
	var errs fieldErrors
	// The record comes from the user on creation and may list thousands of
	// names: sets keep the checks linear.
	listedInit, listedContainers, listedVolumes := spec.NameSet(prev.InitContainers), spec.NameSet(prev.Containers), spec.NameSet(prev.Volumes)
	clash := func(p *field.Path, name string, reserved []string, listed map[string]bool, what string) {
		if slices.Contains(reserved, name) && !listed[name] {
			errs = append(errs, invalidf(p, name, "%s name %q is reserved for AutoCrane's injected %s; rename it", what, name, what))
		}
	}
	for i, c := range pod.Spec.InitContainers {
		clash(specPath.Child("initContainers").Index(i).Child("name"), c.Name, reservedContainers, listedInit, "container")
	}
	for i, c := range pod.Spec.Containers {
		clash(specPath.Child("containers").Index(i).Child("name"), c.Name, reservedContainers, listedContainers, "container")
	}
	for i, v := range pod.Spec.Volumes {
		clash(specPath.Child("volumes").Index(i).Child("name"), v.Name, reservedVolumes, listedVolumes, "volume")
	}
	if len(errs) > 0 {
		return errs
	}

	used := map[int32]string{}
	for _, c := range slices.Concat(d.initContainers, d.containers) {
		for _, p := range c.Ports {
			used[p.ContainerPort] = c.Name
		}
	}
	ours := spec.NameSet(slices.Concat(prev.Containers, prev.InitContainers))
	for _, group := range []struct {
		name string
		cs   []corev1.Container
	}{{"initContainers", pod.Spec.InitContainers}, {"containers", pod.Spec.Containers}} {
		for i, c := range group.cs {
			if ours[c.Name] {
				continue
			}
			for j, p := range c.Ports {
				if owner, ok := used[p.ContainerPort]; ok {
					errs = append(errs, invalidf(specPath.Child(group.name).Index(i).Child("ports").Index(j).Child("containerPort"), p.ContainerPort,
						"port %d is taken by AutoCrane's injected container %s; pick another port, or move AutoCrane's with the manager's port flags", p.ContainerPort, owner))
				}
			}
		}
	}

	if len(want.Deployments) > 0 {
		var apps []corev1.Container
		for _, c := range pod.Spec.Containers {
			if !listedContainers[c.Name] {
				apps = append(apps, c)
			}
		}
		locPath := want.LocationPath
		if locPath == nil {
			locPath = spec.AnnotationPath(spec.KeyStoreLocation)
		}
		ourMounts := spec.NameSet(prev.Mounts)
		skipOurs := func(m corev1.VolumeMount) bool { return ourMounts[m.Name] }
		errs = append(errs, spec.ValidateLocationAgainstMounts(want.Store.Location, locPath, apps, skipOurs)...)
	}
	return errs
}

// reconcile makes have hold want: an entry of want replaces the entry of the
// same name in place, or is appended; an entry the previous pass injected
// (listed in prev and reserved) that want no longer has is removed; every
// other entry stays exactly as it is. It returns the names of want.
func reconcile[T any](have []T, prev, reserved []string, want []T, name func(*T) string) ([]T, []string) {
	wantIdx := map[string]int{}
	names := make([]string, len(want))
	for i := range want {
		n := name(&want[i])
		wantIdx[n] = i
		names[i] = n
	}
	if len(want) == 0 {
		names = nil
	}
	placed := make([]bool, len(want))
	listed := spec.NameSet(prev)
	var out []T
	for i := range have {
		n := name(&have[i])
		if wi, ok := wantIdx[n]; ok {
			out = append(out, want[wi])
			placed[wi] = true
			continue
		}
		if listed[n] && slices.Contains(reserved, n) {
			continue
		}
		out = append(out, have[i])
	}
	for i := range want {
		if !placed[i] {
			out = append(out, want[i])
		}
	}
	return out, names
}

func containerName(c *corev1.Container) string { return c.Name }
func volumeName(v *corev1.Volume) string       { return v.Name }
func mountName(m *corev1.VolumeMount) string   { return m.Name }

// hash identifies what was injected, so a changed config shows as a changed
// hash on the pod.
func hash(d desired, rec spec.Injected) string {
	b, err := json.Marshal(struct {
		InitContainers []corev1.Container
		Containers     []corev1.Container
		Volumes        []corev1.Volume
		Mounts         []corev1.VolumeMount
		Annotations    []string
	}{d.initContainers, d.containers, d.volumes, d.appMounts, rec.Annotations})
	if err != nil {
		panic(fmt.Sprintf("marshal injected objects: %v", err))
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:8])
}
