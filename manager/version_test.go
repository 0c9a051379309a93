package manager

import (
	"testing"

	"github.com/autocrane/autocrane/spec"
)

func TestSidecarModeFor(t *testing.T) {
	tests := map[string]struct {
		major, minor string
		want         spec.SidecarMode
	}{
		"1.28 is classic":       {"1", "28", spec.SidecarClassic},
		"1.29 is native":        {"1", "29", spec.SidecarNative},
		"provider suffix":       {"1", "30+", spec.SidecarNative},
		"a future major":        {"2", "0", spec.SidecarNative},
		"old provider suffixed": {"1", "27+", spec.SidecarClassic},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ma, mi, err := ParseVersion(tc.major, tc.minor)
			if err != nil {
				t.Fatal(err)
			}
			if got := SidecarModeFor(ma, mi); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if _, _, err := ParseVersion("one", "29"); err == nil {
		t.Error("ParseVersion accepted a non-number")
	}
}
