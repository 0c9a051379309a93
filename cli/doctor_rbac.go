package cli

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Permission is one right the manager's service account needs.
type Permission struct {
	Group, Resource, Subresource string
	Verbs                        []string
	// Namespace limits the right to one namespace; empty: every namespace
	// (or a cluster-scoped resource).
	Namespace string
	// Name limits the right to one object; empty: any.
	Name string
	// Why the manager needs it.
	Why string
}

func (p Permission) String() string {
	r := p.Resource
	if p.Subresource != "" {
		r += "/" + p.Subresource
	}
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.Name != "" {
		r += " " + p.Name
	}
	if p.Namespace != "" {
		return r + " in namespace " + p.Namespace
	}
	return r + " in all namespaces"
}

// leaseName is the manager's leader election Lease (manager/manager.go).
const leaseName = "autocrane-manager.autocrane.io"

// ManagerPermissions lists what the manager's service account needs, as
// config/rbac/manager and, for self-managed certificates,
// config/selfmanaged/rbac.yaml grant it. opts must be defaulted.
func ManagerPermissions(opts DoctorOptions, certMode string) []Permission {
	ns := opts.Namespace
	read := []string{"get", "list", "watch"}
	p := []Permission{
		{Resource: "pods", Verbs: []string{"get", "list", "watch", "patch"}, Why: "the controllers watch pods and write their findings on them"},
		{Resource: "pods", Subresource: "eviction", Verbs: []string{"create"}, Why: "pods in watchdog error are evicted within their budget"},
		{Resource: "namespaces", Verbs: read, Why: "admission reads namespace labels and annotations"},
		{Group: "policy", Resource: "poddisruptionbudgets", Verbs: read, Why: "evictions stay within PodDisruptionBudgets"},
		{Group: "apps", Resource: "replicasets", Verbs: read, Why: "a pod's owner decides its rollout group"},
		{Group: "apps", Resource: "deployments", Verbs: read, Why: "a pod's owner decides its rollout group"},
		{Group: "apps", Resource: "statefulsets", Verbs: read, Why: "a pod's owner decides its rollout group"},
		{Group: "apps", Resource: "daemonsets", Verbs: read, Why: "a pod's owner decides its rollout group"},
		{Resource: "events", Verbs: []string{"create", "patch"}, Why: "the controllers record events"},
		{Group: "events.k8s.io", Resource: "events", Verbs: []string{"create", "patch"}, Why: "the controllers record events"},
		{Group: "autocrane.io", Resource: "watchdogs", Verbs: []string{"update"}, Why: "the state-ownership policy lets only this right write watchdog results"},
		{Group: "autocrane.io", Resource: "datadeployments", Verbs: []string{"update"}, Why: "the state-ownership policy lets only this right write data rollout state"},
		{Resource: "configmaps", Namespace: ns, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}, Why: "the data rollout keeps its progress in ConfigMaps"},
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: ns, Verbs: []string{"create"}, Why: "leader election creates its Lease"},
		{Group: "coordination.k8s.io", Resource: "leases", Namespace: ns, Name: leaseName, Verbs: []string{"get", "update"}, Why: "leader election renews its Lease"},
	}
	if certMode == DoctorCertModeSelfManaged {
		p = append(p,
			Permission{Resource: "secrets", Namespace: ns, Verbs: []string{"create"}, Why: "the leader creates the certificate Secret"},
			Permission{Resource: "secrets", Namespace: ns, Name: opts.CertSecretName, Verbs: []string{"get", "list", "watch", "update"}, Why: "every replica serves from the certificate Secret; the leader renews it"},
			Permission{Group: "admissionregistration.k8s.io", Resource: "mutatingwebhookconfigurations", Name: opts.MutatingWebhookConfiguration,
				Verbs: []string{"get", "list", "watch", "patch"}, Why: "the leader writes the caBundle"},
			Permission{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Name: opts.ValidatingWebhookConfiguration,
				Verbs: []string{"get", "list", "watch", "patch"}, Why: "the leader writes the caBundle"},
		)
	}
	return p
}

// checkRBAC asks the API server's authorizer, one SubjectAccessReview per
// verb, whether the manager's service account holds each permission. (A
// SelfSubjectAccessReview would need to impersonate it.)
func (d *doctor) checkRBAC(ctx context.Context, certMode string) {
	ns, sa := d.opts.Namespace, d.opts.ServiceAccount
	user := "system:serviceaccount:" + ns + ":" + sa
	perms := ManagerPermissions(d.opts, certMode)
	hint := "apply the manager's RBAC: kubectl apply -k config/default (config/rbac/manager)"
	if certMode == DoctorCertModeSelfManaged {
		hint = "apply the manager's RBAC: kubectl apply -k config/selfmanaged (config/rbac/manager and config/selfmanaged/rbac.yaml)"
	}
	missing := 0
	for _, p := range perms {
		var denied []string
		for _, verb := range p.Verbs {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: p.Namespace, Verb: verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource, Name: p.Name,
				},
			}}
			if err := d.client.Create(ctx, sar); err != nil {
				if apierrors.IsForbidden(err) {
					d.report.warn("rbac", "cannot check the manager's permissions: not allowed to create SubjectAccessReviews",
						"run the doctor as a cluster admin")
				} else {
					d.report.fail("rbac", "cannot check the manager's permissions: "+err.Error(), "check the connection to the API server")
				}
				return
			}
			if !sar.Status.Allowed {
				denied = append(denied, verb)
			}
		}
		if len(denied) > 0 {
			missing++
			d.report.fail("rbac "+p.String(), fmt.Sprintf("%s may not %s it (%s)", user, strings.Join(denied, ", "), p.Why), hint)
		}
	}
	if missing == 0 {
		d.report.ok("rbac", fmt.Sprintf("%s holds all %d permissions the manager needs", user, len(perms)))
	}
}
