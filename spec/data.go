package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Data rollout tuning keys, set on the pods (templates) that use data.
const (
	// KeyRolloutWaves lists the waves of a data rollout: pod counts or
	// percentages of the pods, cumulative, ending at 100%.
	KeyRolloutWaves = "rollout.data.autocrane.io/waves"
	// KeyRolloutBakeSeconds is how long a wave must stay error-free after its
	// data went live.
	KeyRolloutBakeSeconds = "rollout.data.autocrane.io/bake-seconds"
)

// Data rollout defaults.
const (
	DefaultRolloutWaves = "1,10%,50%,100%"
	DefaultBakeSeconds  = 300
	// MaxWaves bounds the number of waves.
	MaxWaves = 20
)

// Wave is one step of a rollout: Count pods, or Percent of the pods
// (rounded up), counted over all pods, not only this wave's.
type Wave struct {
	Count   int
	Percent int
}

// Size is how many of total pods are on the new version when this wave is
// done: at least one, at most total (none of none).
func (w Wave) Size(total int) int {
	if total <= 0 {
		return 0
	}
	n := w.Count
	if w.Percent > 0 {
		n = (total*w.Percent + 99) / 100
	}
	return max(1, min(n, total))
}

// String formats the wave as N or N%.
func (w Wave) String() string {
	if w.Percent > 0 {
		return strconv.Itoa(w.Percent) + "%"
	}
	return strconv.Itoa(w.Count)
}

// Rollout is how a data rollout proceeds.
type Rollout struct {
	Waves []Wave
	Bake  time.Duration
}

// DefaultRollout is the rollout of a pod that sets no rollout key.
func DefaultRollout() Rollout {
	waves, _ := ParseWaves(DefaultRolloutWaves, nil)
	return Rollout{Waves: waves, Bake: DefaultBakeSeconds * time.Second}
}

// ParseRollout parses the rollout.data.autocrane.io/* keys. Invalid keys keep
// their defaults, and the errors say what was wrong.
func ParseRollout(annotations map[string]string) (Rollout, field.ErrorList) {
	r := DefaultRollout()
	var errs field.ErrorList
	if v, ok := annotations[KeyRolloutWaves]; ok {
		w, err := ParseWaves(v, AnnotationPath(KeyRolloutWaves))
		if err != nil {
			errs = append(errs, err)
		} else {
			r.Waves = w
		}
	}
	if v, ok := annotations[KeyRolloutBakeSeconds]; ok {
		s, err := ParseSeconds(v, AnnotationPath(KeyRolloutBakeSeconds))
		if err != nil {
			errs = append(errs, err)
		} else {
			r.Bake = time.Duration(s) * time.Second
		}
	}
	return r, errs
}

// ParseWaves parses a comma-separated list of waves, such as 1,10%,50%,100%.
// Each wave must reach further than the one before, and the last must be
// 100%, so every rollout ends with every pod on the new version.
func ParseWaves(v string, p *field.Path) ([]Wave, *field.Error) {
	const form = "a comma-separated list of pod counts and percentages, growing, ending at 100%, such as 1,10%,50%,100%"
	if len(v) > 256 {
		return nil, invalid(p, v, "too long; "+form)
	}
	parts := strings.Split(v, ",")
	if len(parts) > MaxWaves {
		return nil, invalid(p, v, fmt.Sprintf("at most %d waves; %s", MaxWaves, form))
	}
	waves := make([]Wave, 0, len(parts))
	lastPercent, lastCount := 0, 0
	for _, s := range parts {
		s = strings.TrimSpace(s)
		if pct, ok := strings.CutSuffix(s, "%"); ok {
			n, err := parseBoundedInt(pct, 1, 100, p)
			if err != nil || n <= lastPercent {
				return nil, invalid(p, v, fmt.Sprintf("wave %q must be a percentage from 1%% to 100%%, larger than the one before; %s", shown(s), form))
			}
			lastPercent = n
			waves = append(waves, Wave{Percent: n})
			continue
		}
		n, err := parseBoundedInt(s, 1, 1000000, p)
		if err != nil || n <= lastCount || lastPercent > 0 {
			return nil, invalid(p, v, fmt.Sprintf("wave %q must be a pod count larger than the one before, and pod counts come before percentages; %s", shown(s), form))
		}
		lastCount = n
		waves = append(waves, Wave{Count: n})
	}
	if lastPercent != 100 {
		return nil, invalid(p, v, "the last wave must be 100%; "+form)
	}
	return waves, nil
}

var (
	versionIDPattern = regexp.MustCompile(`^[0-9a-z][0-9a-z.-]{0,62}$`)
	digestPattern    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// ValidateVersionID checks a data version id: lower-case letters, digits,
// "." and "-", at most 63 bytes, starting with a letter or digit.
func ValidateVersionID(id string) error {
	if !versionIDPattern.MatchString(id) {
		return fmt.Errorf("version id %q must be 1 to 63 lower-case letters, digits, '.' or '-', starting with a letter or digit", shown(id))
	}
	return nil
}

// ValidateDigest checks a content digest: sha256: and 64 lower-case hex digits.
func ValidateDigest(d string) error {
	if !digestPattern.MatchString(d) {
		return fmt.Errorf("digest %q must be sha256: followed by 64 lower-case hex digits", shown(d))
	}
	return nil
}

// DataVersion names one version of a source.
type DataVersion struct {
	Source string
	ID     string
	Digest string
}

// DataRequest is the value of request.data.autocrane.io/NAME: the version
// the controller wants a pod to hold, as SOURCE/VERSION/DIGEST.
type DataRequest = DataVersion

// String formats the version as SOURCE/VERSION/DIGEST.
func (v DataVersion) String() string { return v.Source + "/" + v.ID + "/" + v.Digest }

// ParseDataRequest parses SOURCE/VERSION/DIGEST.
func ParseDataRequest(s string) (DataRequest, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return DataRequest{}, fmt.Errorf("%q: want SOURCE/VERSION/DIGEST", shown(s))
	}
	r := DataRequest{Source: parts[0], ID: parts[1], Digest: parts[2]}
	if err := validateName(r.Source, nil, "source name"); err != nil {
		return DataRequest{}, errors.New(err.Detail)
	}
	if err := ValidateVersionID(r.ID); err != nil {
		return DataRequest{}, err
	}
	if err := ValidateDigest(r.Digest); err != nil {
		return DataRequest{}, err
	}
	return r, nil
}

// DataState is what a pod's datadeployer is doing with a data deployment.
type DataState string

// The data states.
const (
	// DataSyncing: fetching or extracting the requested version.
	DataSyncing DataState = "syncing"
	// DataLive: the requested version is live.
	DataLive DataState = "live"
	// DataFailed: the requested version failed; the held one stays live.
	DataFailed DataState = "failed"
)

// DataStatus is the value of status.data.autocrane.io/NAME:
// STATE/VERSION/DIGEST/SINCE/MESSAGE, where VERSION and DIGEST are the
// version live on the pod ("-" when none is), SINCE is when it went live,
// and MESSAGE is the last error, if any.
type DataStatus struct {
	State   DataState
	Version string
	Digest  string
	Since   time.Time
	Message string
}

// None marks a missing version or time in a DataStatus value.
const None = "-"

// String formats the status.
func (s DataStatus) String() string {
	version, digest, since := s.Version, s.Digest, None
	if version == "" {
		version = None
	}
	if digest == "" {
		digest = None
	}
	if !s.Since.IsZero() {
		since = s.Since.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	return strings.Join([]string{string(s.State), version, digest, since, SanitizeMessage(s.Message)}, "/")
}

// ParseDataStatus parses STATE/VERSION/DIGEST/SINCE/MESSAGE.
func ParseDataStatus(v string) (DataStatus, error) {
	parts := strings.SplitN(v, "/", 5)
	if len(parts) != 5 {
		return DataStatus{}, fmt.Errorf("%q: want STATE/VERSION/DIGEST/SINCE/MESSAGE", shown(v))
	}
	s := DataStatus{State: DataState(parts[0]), Message: parts[4]}
	switch s.State {
	case DataSyncing, DataLive, DataFailed:
	default:
		return DataStatus{}, fmt.Errorf("state %q is not one of syncing, live, failed", shown(parts[0]))
	}
	if parts[1] != None {
		if err := ValidateVersionID(parts[1]); err != nil {
			return DataStatus{}, err
		}
		s.Version = parts[1]
	}
	if parts[2] != None {
		if err := ValidateDigest(parts[2]); err != nil {
			return DataStatus{}, err
		}
		s.Digest = parts[2]
	}
	if parts[3] != None {
		t, err := parseTimestamp("since", parts[3])
		if err != nil {
			return DataStatus{}, err
		}
		s.Since = t
	}
	if len(s.Message) > MaxStatusMessage {
		return DataStatus{}, fmt.Errorf("message is %d bytes, more than %d", len(s.Message), MaxStatusMessage)
	}
	return s, nil
}
