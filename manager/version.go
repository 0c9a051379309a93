package manager

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// ServerVersion asks the API server for its major and minor version.
func ServerVersion(cfg *rest.Config) (int, int, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("discovery client: %w", err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return 0, 0, fmt.Errorf("ask the API server its version: %w", err)
	}
	return ParseVersion(info.Major, info.Minor)
}

// ParseVersion reads version.Info's Major and Minor, which some providers
// suffix with "+" (for example "29+").
func ParseVersion(major, minor string) (int, int, error) {
	ma, err := strconv.Atoi(strings.TrimSuffix(major, "+"))
	if err != nil {
		return 0, 0, fmt.Errorf("server major version %q: %w", major, err)
	}
	mi, err := strconv.Atoi(strings.TrimSuffix(minor, "+"))
	if err != nil {
		return 0, 0, fmt.Errorf("server minor version %q: %w", minor, err)
	}
	return ma, mi, nil
}
