package certs

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Defaults of Policy.
const (
	// DefaultCALifetime is how long a new CA is valid.
	DefaultCALifetime = 365 * 24 * time.Hour
	// DefaultServingLifetime is how long a new serving certificate is valid.
	DefaultServingLifetime = 90 * 24 * time.Hour
	// DefaultCAOverlap is how long both CAs stay trusted around a CA
	// rotation: far longer than a Secret or a webhook configuration takes to
	// reach every replica and API server (seconds), short enough that a
	// rotation finishes within the hour.
	DefaultCAOverlap = 10 * time.Minute
)

// backdate is how far before "now" a new certificate's NotBefore is set, so
// an API server whose clock runs a little behind the manager's still
// accepts it. Renewal times are computed from the issuing time, not from
// NotBefore, so short test lifetimes are not shortened by it.
const backdate = 5 * time.Minute

// Policy says how long certificates live and how long a CA rotation keeps
// both CAs trusted. Certificates are renewed at two thirds of their
// lifetime.
type Policy struct {
	// CALifetime is the validity of a new CA. Zero: DefaultCALifetime.
	CALifetime time.Duration
	// ServingLifetime is the validity of a new serving certificate, cut to
	// its CA's end. Zero: DefaultServingLifetime.
	ServingLifetime time.Duration
	// CAOverlap is how long a new CA is trusted before it signs, and how
	// long the old CA stays trusted after it stopped signing. Zero:
	// DefaultCAOverlap.
	CAOverlap time.Duration
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.CALifetime == 0 {
		p.CALifetime = DefaultCALifetime
	}
	if p.ServingLifetime == 0 {
		p.ServingLifetime = DefaultServingLifetime
	}
	if p.CAOverlap == 0 {
		p.CAOverlap = DefaultCAOverlap
	}
	return p
}

// Validate checks a defaulted policy. A CA rotation starts with a third of
// the CA's lifetime left and needs two overlaps (trust the new CA, then
// keep trusting the old one) during which the old CA must still be valid.
func (p Policy) Validate() error {
	var errs []error
	if p.CALifetime <= 0 {
		errs = append(errs, fmt.Errorf("CA lifetime %s: must be positive", p.CALifetime))
	}
	if p.ServingLifetime <= 0 {
		errs = append(errs, fmt.Errorf("serving certificate lifetime %s: must be positive", p.ServingLifetime))
	}
	if p.CAOverlap <= 0 {
		errs = append(errs, fmt.Errorf("CA overlap %s: must be positive", p.CAOverlap))
	}
	if p.CALifetime > 0 && p.CAOverlap > 0 && 2*p.CAOverlap >= p.CALifetime/3 {
		errs = append(errs, fmt.Errorf("CA overlap %s: must be less than a sixth of the CA lifetime %s, "+
			"so that a rotation ends before the old CA expires", p.CAOverlap, p.CALifetime))
	}
	return errors.Join(errs...)
}

// SANs are the names a serving certificate is valid for.
type SANs struct {
	DNSNames    []string
	IPAddresses []net.IP
}

// ServiceSANs returns the names the API server uses to reach a webhook
// Service (<service>.<namespace>.svc, and its cluster.local form), plus
// extra names: each extra that parses as an IP address becomes an IP SAN,
// any other a DNS SAN. Duplicates are dropped and the result sorted, so
// the same flags always give the same certificate names.
func ServiceSANs(service, namespace string, extra []string) (SANs, error) {
	if service == "" || namespace == "" {
		return SANs{}, fmt.Errorf("service %q in namespace %q: both are required", service, namespace)
	}
	var s SANs
	dns := []string{service + "." + namespace + ".svc", service + "." + namespace + ".svc.cluster.local"}
	for _, e := range extra {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if ip := net.ParseIP(e); ip != nil {
			s.IPAddresses = append(s.IPAddresses, ip)
			continue
		}
		if strings.ContainsAny(e, " /:") {
			return SANs{}, fmt.Errorf("extra SAN %q: neither an IP address nor a DNS name", e)
		}
		dns = append(dns, strings.ToLower(e))
	}
	slices.Sort(dns)
	s.DNSNames = slices.Compact(dns)
	slices.SortFunc(s.IPAddresses, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	s.IPAddresses = slices.CompactFunc(s.IPAddresses, net.IP.Equal)
	return s, nil
}

// covers says whether a certificate carries exactly these names.
func (s SANs) covers(dns []string, ips []net.IP) bool {
	if len(dns) != len(s.DNSNames) || len(ips) != len(s.IPAddresses) {
		return false
	}
	for _, d := range s.DNSNames {
		if !slices.Contains(dns, d) {
			return false
		}
	}
	for _, ip := range s.IPAddresses {
		if !slices.ContainsFunc(ips, ip.Equal) {
			return false
		}
	}
	return true
}
