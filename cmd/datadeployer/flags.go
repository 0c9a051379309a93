package main

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/autocrane/autocrane/internal/envflag"
)

// errUsage marks errors in the command line itself (exit code 2).
var errUsage = errors.New("usage error")

// envPrefix starts the environment variable of every flag: --mode falls
// back to $DATADEPLOYER_MODE.
const envPrefix = "DATADEPLOYER_"

// envName is the environment variable of a flag.
func envName(flagName string) string { return envflag.Name(envPrefix, flagName) }

// bytesValue is a size flag that takes a Kubernetes quantity: 4Gi, 500Mi,
// 1000000. It prints as a quantity too, so --help shows 4Gi.
type bytesValue int64

func (b *bytesValue) String() string {
	return resource.NewQuantity(int64(*b), resource.BinarySI).String()
}

func (b *bytesValue) Set(v string) error {
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return fmt.Errorf("%q is not a size such as 4Gi or 500Mi", v)
	}
	n, ok := q.AsInt64()
	if !ok || n < 1 {
		return fmt.Errorf("%q must be a whole number of bytes, at least 1", v)
	}
	*b = bytesValue(n)
	return nil
}
