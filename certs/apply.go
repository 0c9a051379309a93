package certs

import (
	"fmt"
	"time"
)

// Apply carries out an action on a state and returns the new state, to be
// written with Encode. It issues keys and certificates; everything else is
// bookkeeping. ActionNone returns s unchanged.
func Apply(s State, a Action, now time.Time, p Policy, sans SANs) (State, error) {
	switch a {
	case ActionNone:
		return s, nil
	case ActionCreate:
		ca, err := NewCA(now, p.CALifetime)
		if err != nil {
			return s, err
		}
		serving, err := NewServing(ca, now, p.ServingLifetime, sans)
		if err != nil {
			return s, err
		}
		return State{CA: ca, Serving: serving}, nil
	case ActionIssueServing:
		serving, err := NewServing(s.CA, now, p.ServingLifetime, sans)
		if err != nil {
			return s, err
		}
		s.Serving, s.ServingErr = serving, nil
		return s, nil
	case ActionStartCARotation:
		next, err := NewCA(now, p.CALifetime)
		if err != nil {
			return s, err
		}
		s.NextCA, s.NextCAErr, s.NextCAPublishedAt = next, nil, time.Time{}
		return s, nil
	case ActionMarkNextCAPublished:
		s.NextCAPublishedAt = now
		return s, nil
	case ActionPromoteNextCA:
		if s.NextCA == nil {
			return s, fmt.Errorf("promote next CA: there is none")
		}
		serving, err := NewServing(s.NextCA, now, p.ServingLifetime, sans)
		if err != nil {
			return s, err
		}
		out := State{CA: s.NextCA, Serving: serving}
		if s.CA != nil {
			out.PreviousCA, out.PreviousCARetiredAt = s.CA.Cert, now
		}
		return out, nil
	case ActionDropPreviousCA:
		s.PreviousCA, s.PreviousCAErr, s.PreviousCARetiredAt = nil, nil, time.Time{}
		return s, nil
	default:
		return s, fmt.Errorf("unknown action %q", a)
	}
}
