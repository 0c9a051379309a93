package webhook

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestReadNamespaceFallsBackToLiveOnACacheMiss(t *testing.T) {
	empty := fakeNamespaces{namespaces: map[string]metav1.ObjectMeta{}}
	ns, err := readNamespace(t.Context(), empty, testNamespaces, "apps")
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels["autocrane.io/inject"] != "enabled" {
		t.Errorf("labels from the live read: %v", ns.Labels)
	}
	if _, err := readNamespace(t.Context(), empty, nil, "apps"); err == nil || !strings.Contains(err.Error(), `not found (if it was just created`) {
		t.Errorf("without a live reader: %v", err)
	}
	if _, err := readNamespace(t.Context(), empty, empty, "apps"); err == nil {
		t.Error("missing everywhere: no error")
	}
}
