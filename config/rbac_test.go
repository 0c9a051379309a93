package config

import (
	"maps"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
)

// checkRBACHasNoWildcards: every rule names its groups, resources and verbs,
// and every binding refers to a role the install ships.
func checkRBACHasNoWildcards(t *testing.T, m *manifest) {
	t.Helper()
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, o := range m.all(kind) {
			var rules []rbacv1.PolicyRule
			if kind == "ClusterRole" {
				r := &rbacv1.ClusterRole{}
				decode(t, o, r)
				if r.AggregationRule != nil {
					t.Errorf("ClusterRole %s aggregates other roles", r.Name)
				}
				rules = r.Rules
			} else {
				r := &rbacv1.Role{}
				decode(t, o, r)
				rules = r.Rules
			}
			if len(rules) == 0 {
				t.Errorf("%s %s has no rules", kind, o.GetName())
			}
			for i, rule := range rules {
				if len(rule.NonResourceURLs) > 0 || len(rule.Verbs) == 0 || len(rule.Resources) == 0 {
					t.Errorf("%s %s rule %d: want resources and verbs, no non-resource URLs: %+v", kind, o.GetName(), i, rule)
				}
				for _, list := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
					if slices.ContainsFunc(list, func(s string) bool { return s == rbacv1.ResourceAll || s == rbacv1.VerbAll || s == "*/*" }) {
						t.Errorf("%s %s rule %d has a wildcard: %+v", kind, o.GetName(), i, rule)
					}
				}
			}
		}
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, o := range m.all(kind) {
			b := &rbacv1.RoleBinding{}
			decode(t, o, b)
			m.find(t, b.RoleRef.Kind, b.RoleRef.Name)
		}
	}
}

// access is one API request, as the RBAC authorizer sees it: the name is
// empty for create, and for list and watch unless the request carries the
// field selector metadata.name=NAME.
type access struct {
	verb, group, resource, namespace, name string
}

// allowed reports whether the rendered RBAC lets the manager's service
// account make request r: the same rule matching as the RBAC authorizer,
// without wildcards (checkRBACHasNoWildcards rules them out).
func allowed(t *testing.T, m *manifest, r access) bool {
	t.Helper()
	isManager := func(subjects []rbacv1.Subject) bool {
		return slices.Contains(subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "autocrane-manager", Namespace: namespace})
	}
	matches := func(rules []rbacv1.PolicyRule) bool {
		for _, rule := range rules {
			if slices.Contains(rule.Verbs, r.verb) && slices.Contains(rule.APIGroups, r.group) &&
				slices.Contains(rule.Resources, r.resource) &&
				(len(rule.ResourceNames) == 0 || r.name != "" && slices.Contains(rule.ResourceNames, r.name)) {
				return true
			}
		}
		return false
	}
	roleRules := func(kind, name, ns string) []rbacv1.PolicyRule {
		if kind == "ClusterRole" {
			cr := &rbacv1.ClusterRole{}
			decode(t, m.find(t, kind, name), cr)
			return cr.Rules
		}
		for _, o := range m.all("Role") {
			if o.GetName() == name && o.GetNamespace() == ns {
				role := &rbacv1.Role{}
				decode(t, o, role)
				return role.Rules
			}
		}
		t.Fatalf("no Role %s/%s", ns, name)
		return nil
	}
	for _, o := range m.all("ClusterRoleBinding") {
		b := &rbacv1.ClusterRoleBinding{}
		decode(t, o, b)
		if isManager(b.Subjects) && matches(roleRules(b.RoleRef.Kind, b.RoleRef.Name, "")) {
			return true
		}
	}
	if r.namespace == "" {
		return false // a cluster-wide request: RoleBindings do not apply
	}
	for _, o := range m.all("RoleBinding") {
		b := &rbacv1.RoleBinding{}
		decode(t, o, b)
		if b.Namespace == r.namespace && isManager(b.Subjects) && matches(roleRules(b.RoleRef.Kind, b.RoleRef.Name, b.Namespace)) {
			return true
		}
	}
	return false
}

// managerPermissions lists what the manager must (true) and must not
// (false) be able to do in mode.
func managerPermissions(mode certMode) map[access]bool {
	const other = "team-a" // any namespace but AutoCrane's
	// Both modes: the controllers, leader election, the state keys.
	common := map[access]bool{
		{"list", "", "pods", "", ""}:                                                             true,
		{"watch", "", "pods", "", ""}:                                                            true,
		{"get", "", "pods", other, "p"}:                                                          true,
		{"patch", "", "pods", other, "p"}:                                                        true,
		{"create", "", "pods/eviction", other, ""}:                                               true,
		{"list", "policy", "poddisruptionbudgets", "", ""}:                                       true,
		{"watch", "apps", "replicasets", "", ""}:                                                 true,
		{"get", "apps", "deployments", other, "d"}:                                               true,
		{"list", "apps", "statefulsets", "", ""}:                                                 true,
		{"list", "apps", "daemonsets", "", ""}:                                                   true,
		{"list", "", "namespaces", "", ""}:                                                       true,
		{"get", "", "namespaces", "", other}:                                                     true,
		{"create", "", "events", other, ""}:                                                      true,
		{"patch", "events.k8s.io", "events", other, "e"}:                                         true,
		{"update", "autocrane.io", "watchdogs", other, ""}:                                       true,
		{"update", "autocrane.io", "datadeployments", other, ""}:                                 true,
		{"list", "", "configmaps", namespace, ""}:                                                true,
		{"update", "", "configmaps", namespace, "rollout"}:                                       true,
		{"create", "coordination.k8s.io", "leases", namespace, ""}:                               true,
		{"update", "coordination.k8s.io", "leases", namespace, "autocrane-manager.autocrane.io"}: true,

		{"delete", "", "pods", other, "p"}:                                                        false, // only evictions
		{"update", "", "pods", other, "p"}:                                                        false,
		{"patch", "", "pods/status", other, "p"}:                                                  false,
		{"create", "", "pods", other, ""}:                                                         false,
		{"get", "", "secrets", other, "s"}:                                                        false,
		{"list", "", "configmaps", "", ""}:                                                        false, // its own namespace only
		{"get", "", "configmaps", other, "c"}:                                                     false,
		{"update", "coordination.k8s.io", "leases", namespace, "someone-else"}:                    false,
		{"update", "coordination.k8s.io", "leases", other, "autocrane-manager.autocrane.io"}:      false,
		{"create", "authorization.k8s.io", "subjectaccessreviews", "", ""}:                        false,
		{"update", "apps", "deployments", other, "d"}:                                             false,
		{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "other"}: false,
	}
	certManagerOnly := map[access]bool{
		{"get", "", "secrets", namespace, tlsSecret}:                                                         false, // mounted by the kubelet
		{"create", "", "secrets", namespace, ""}:                                                             false,
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "autocrane-mutating"}: false, // cainjector's job
	}
	selfManagedOnly := map[access]bool{
		{"create", "", "secrets", namespace, ""}:                                                                  true,
		{"get", "", "secrets", namespace, tlsSecret}:                                                              true,
		{"update", "", "secrets", namespace, tlsSecret}:                                                           true,
		{"list", "", "secrets", namespace, tlsSecret}:                                                             true, // with the field selector metadata.name
		{"watch", "", "secrets", namespace, tlsSecret}:                                                            true,
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "autocrane-mutating"}:      true,
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "autocrane-validating"}: true,
		{"watch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "autocrane-mutating"}:      true, // with the field selector
		{"list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "autocrane-validating"}:   true,

		{"list", "", "secrets", namespace, ""}:                                                                 false, // no field selector: every Secret
		{"watch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""}:                     false, // no field selector
		{"get", "", "secrets", namespace, "other"}:                                                             false,
		{"get", "", "secrets", other, tlsSecret}:                                                               false,
		{"delete", "", "secrets", namespace, tlsSecret}:                                                        false,
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "autocrane-validating"}: false,
		{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "someone-elses"}:      false,
	}
	cases := certManagerOnly
	if mode == selfManaged {
		cases = selfManagedOnly
	}
	maps.Copy(cases, common)
	return cases
}

// TestManagerPermissions checks managerPermissions against the rendered
// RBAC of each overlay (TestApply checks them against a real authorizer).
func TestManagerPermissions(t *testing.T) {
	kubectl := kubectlPath(t)
	for name, tc := range overlays() {
		t.Run(name, func(t *testing.T) {
			m := render(t, kubectl, name)
			for r, want := range managerPermissions(tc.mode) {
				if got := allowed(t, m, r); got != want {
					t.Errorf("%+v: allowed %v, want %v", r, got, want)
				}
			}
		})
	}
}
