package injector

import (
	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podBuilder builds test pods, kueue style: MakePod(...).X(...).Obj().
type podBuilder struct{ pod corev1.Pod }

func makePod(name string) *podBuilder {
	return &podBuilder{pod: corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.invalid/app:1",
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		}}},
	}}
}

func (b *podBuilder) annotate(kv ...string) *podBuilder {
	if b.pod.Annotations == nil {
		b.pod.Annotations = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		b.pod.Annotations[kv[i]] = kv[i+1]
	}
	return b
}

func (b *podBuilder) container(c corev1.Container) *podBuilder {
	b.pod.Spec.Containers = append(b.pod.Spec.Containers, c)
	return b
}

func (b *podBuilder) initContainer(c corev1.Container) *podBuilder {
	b.pod.Spec.InitContainers = append(b.pod.Spec.InitContainers, c)
	return b
}

func (b *podBuilder) volume(v corev1.Volume) *podBuilder {
	b.pod.Spec.Volumes = append(b.pod.Spec.Volumes, v)
	return b
}

func (b *podBuilder) obj() *corev1.Pod { return b.pod.DeepCopy() }

// withData asks for data deployment "models" from source "models".
func (b *podBuilder) withData() *podBuilder {
	return b.annotate(spec.KeyStoreURL, "http://repo.team:8080", spec.PrefixData+"models", "models")
}

func parse(pod *corev1.Pod) spec.Pod {
	p, errs := spec.ParsePod(spec.Namespace{Name: pod.Namespace}, pod.Annotations)
	if len(errs) > 0 {
		panic(errs.ToAggregate())
	}
	return p
}
