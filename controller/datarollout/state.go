package datarollout

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/autocrane/autocrane/spec"
)

// The state ConfigMap's layout. One ConfigMap per line, in AutoCrane's own
// namespace, named LinePrefix + a hash of the line.
const (
	// LabelState marks the state ConfigMaps (value "true"); the controller
	// watches only ConfigMaps with it.
	LabelState = "autocrane.io/data-state"
	// LabelNamespace and LabelSource say which line a ConfigMap holds, for
	// kubectl get -l.
	LabelNamespace = "autocrane.io/data-namespace"
	LabelSource    = "autocrane.io/data-source"
	// AnnotationStoreURL is the line's repository URL, for people.
	AnnotationStoreURL = "autocrane.io/data-store-url"
	// KeyState holds State as JSON; only the controller writes it.
	KeyState = "state.json"
	// KeyPaused, set to "true" by an operator, stops forward progress:
	// no new rollout, no new wave, no promotion. Rollbacks still happen.
	KeyPaused = "paused"
	// KeyReject, set by an operator, lists version ids (comma-separated)
	// that must not be live: a rolling one is rolled back, a last known
	// good one is replaced by the previous one.
	KeyReject = "reject"
	// LinePrefix begins every state ConfigMap's name.
	LinePrefix = "autocrane-data-"
)

// stateSchema is the version of the state.json layout.
const stateSchema = 1

// maxBad bounds the bad versions kept in a state.
const maxBad = 32

// maxStateBytes bounds a state.json the controller reads.
const maxStateBytes = 512 << 10

// Line is one source of one repository as one namespace uses it. The last
// known good version is kept per line: version ids are the repository's own,
// and a new ReplicaSet (or any new owner) must start where its namespace's
// pods are, which keying by owner could not give.
type Line struct {
	Namespace string `json:"namespace"`
	StoreURL  string `json:"storeURL"`
	Source    string `json:"source"`
}

// Name is the state ConfigMap's name: LinePrefix and 20 hex digits of the
// sha256 of the line, so any URL fits a DNS name.
func (l Line) Name() string {
	h := sha256.Sum256([]byte(l.Namespace + "\x00" + l.StoreURL + "\x00" + l.Source))
	return LinePrefix + hex.EncodeToString(h[:10])
}

func (l Line) String() string { return l.Namespace + "/" + l.Source + "@" + l.StoreURL }

// Version is one version of a source.
type Version struct {
	ID     string `json:"id"`
	Digest string `json:"digest"`
}

// Request is the request.data.autocrane.io value asking for v of source.
func (v Version) Request(source string) string {
	return spec.DataRequest{Source: source, ID: v.ID, Digest: v.Digest}.String()
}

func (v Version) validate() error {
	if err := spec.ValidateVersionID(v.ID); err != nil {
		return err
	}
	return spec.ValidateDigest(v.Digest)
}

// State is a line's persisted state: what new pods start on, what is
// rolling out, and what must not roll out again.
type State struct {
	Schema int `json:"schema"`
	Line
	// LKG is the last known good version, and when it became so.
	LKG *Promoted `json:"lkg,omitempty"`
	// Previous is the LKG before the current one, kept (and pinned) so an
	// operator can reject the current one.
	Previous *Promoted `json:"previous,omitempty"`
	// Rollout is the version rolling out, if any.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Bad are versions that failed or were rejected, newest last.
	Bad []BadVersion `json:"bad,omitempty"`
}

// Promoted is a version that became the last known good one at Since.
type Promoted struct {
	Version
	Since time.Time `json:"since"`
}

// Rollout is a version on its way to the line's pods.
type Rollout struct {
	Version
	Started time.Time `json:"started"`
	// Groups is each group's progress, by GroupKey.
	Groups map[string]GroupProgress `json:"groups"`
}

// GroupProgress is how far one group has got.
type GroupProgress struct {
	// Owner is KIND/NAME of the group's owner, for people.
	Owner string `json:"owner"`
	// Wave is the index of the wave in progress (0 is the first).
	Wave int `json:"wave"`
	// Requested is when the wave last asked more pods for the version: the
	// earliest its bake may start, and the start of its progress deadline.
	Requested time.Time `json:"requested"`
	// Done is true once the last wave baked clean.
	Done bool `json:"done,omitempty"`
}

// BadVersion is a version that must not roll out again.
type BadVersion struct {
	Version
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Empty reports whether the state holds nothing worth persisting.
func (s State) Empty() bool { return s.LKG == nil && s.Rollout == nil && len(s.Bad) == 0 }

// IsBad reports whether id is a bad version.
func (s State) IsBad(id string) bool {
	return slices.ContainsFunc(s.Bad, func(b BadVersion) bool { return b.ID == id })
}

// Pins are the versions the repository must keep for this line: the last
// known good one, the previous one (for a reject) and the rolling one.
func (s State) Pins() []string {
	var ids []string
	for _, p := range []*Promoted{s.LKG, s.Previous} {
		if p != nil {
			ids = append(ids, p.ID)
		}
	}
	if s.Rollout != nil {
		ids = append(ids, s.Rollout.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Clone deep-copies the state.
func (s State) Clone() State {
	out := s
	if s.LKG != nil {
		p := *s.LKG
		out.LKG = &p
	}
	if s.Previous != nil {
		p := *s.Previous
		out.Previous = &p
	}
	if s.Rollout != nil {
		r := *s.Rollout
		r.Groups = make(map[string]GroupProgress, len(s.Rollout.Groups))
		for k, g := range s.Rollout.Groups {
			r.Groups[k] = g
		}
		out.Rollout = &r
	}
	out.Bad = slices.Clone(s.Bad)
	return out
}

// Marshal encodes the state as the value of KeyState. Equal states encode
// equally (map keys are sorted), so a write happens only on a change.
func (s State) Marshal() (string, error) {
	s.Schema = stateSchema
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return "", fmt.Errorf("encode data rollout state: %w", err)
	}
	return buf.String(), nil
}

// ParseState decodes and checks a KeyState value for line. Every version
// in it is checked, since the controller writes them into pod annotations.
func ParseState(data string, line Line) (State, error) {
	if len(data) > maxStateBytes {
		return State{}, fmt.Errorf("state is %d bytes, more than %d", len(data), maxStateBytes)
	}
	var s State
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("decode state: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("decode state: data after the JSON object")
	}
	if s.Schema != stateSchema {
		return State{}, fmt.Errorf("state schema %d: this controller reads schema %d", s.Schema, stateSchema)
	}
	if s.Line != line {
		return State{}, fmt.Errorf("state is for line %s, not %s (a hash collision or a copied ConfigMap)", s.Line, line)
	}
	var errs []error
	check := func(what string, v Version) {
		if err := v.validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if s.LKG != nil {
		check("lkg", s.LKG.Version)
	}
	if s.Previous != nil {
		check("previous", s.Previous.Version)
	}
	if s.Rollout != nil {
		check("rollout", s.Rollout.Version)
		for k, g := range s.Rollout.Groups {
			if g.Wave < 0 || g.Wave >= spec.MaxWaves {
				errs = append(errs, fmt.Errorf("rollout group %q: wave %d out of range", spec.SanitizeMessage(k), g.Wave))
			}
		}
	}
	for i, b := range s.Bad {
		check(fmt.Sprintf("bad[%d]", i), b.Version)
	}
	if len(s.Bad) > maxBad {
		errs = append(errs, fmt.Errorf("%d bad versions, more than %d", len(s.Bad), maxBad))
	}
	if err := errors.Join(errs...); err != nil {
		return State{}, fmt.Errorf("invalid state: %w", err)
	}
	return s, nil
}

// Control is what an operator asks of a line through its ConfigMap.
type Control struct {
	Paused bool
	// Reject are version ids that must not be live.
	Reject []string
}

// ParseControl reads KeyPaused and KeyReject from a state ConfigMap's data.
func ParseControl(data map[string]string) (Control, error) {
	var c Control
	switch v := strings.TrimSpace(data[KeyPaused]); v {
	case "", "false":
	case "true":
		c.Paused = true
	default:
		return Control{}, fmt.Errorf("%s is %q: want true or false", KeyPaused, spec.SanitizeMessage(v))
	}
	if v := strings.TrimSpace(data[KeyReject]); v != "" {
		for id := range strings.SplitSeq(v, ",") {
			id = strings.TrimSpace(id)
			if err := spec.ValidateVersionID(id); err != nil {
				return Control{}, fmt.Errorf("%s: %w", KeyReject, err)
			}
			if !slices.Contains(c.Reject, id) {
				c.Reject = append(c.Reject, id)
			}
		}
		if len(c.Reject) > maxBad {
			return Control{}, fmt.Errorf("%s lists %d versions, more than %d", KeyReject, len(c.Reject), maxBad)
		}
	}
	return c, nil
}
