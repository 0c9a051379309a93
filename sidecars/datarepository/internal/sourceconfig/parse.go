package sourceconfig

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/autocrane/autocrane/spec"
)

// MaxFileBytes bounds a configuration file. A pod's annotations are at
// most 256 KiB in all.
const MaxFileBytes = 1 << 20

// Config is the set of declared sources.
type Config struct {
	// Sources are the valid declarations, by name.
	Sources map[string]spec.Source
	// Invalid are the refused declarations, by name, with the reason.
	Invalid map[string]error
	// Problems belong to no single declaration (a malformed line, a
	// source declared twice).
	Problems []error
}

func newConfig() Config {
	return Config{Sources: map[string]spec.Source{}, Invalid: map[string]error{}}
}

// Names lists the valid and the invalid names, sorted.
func (c Config) Names() []string {
	names := slices.Collect(maps.Keys(c.Sources))
	for n := range c.Invalid {
		if _, ok := c.Sources[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// ParseAnnotationsFile parses a downward API annotations file: one
// key="value" line per annotation, the value quoted as Go quotes strings.
// A malformed line is a problem; the other lines still count.
func ParseAnnotationsFile(data []byte) (map[string]string, []error) {
	out := map[string]string{}
	var problems []error
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		key, quoted, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			problems = append(problems, fmt.Errorf("annotations file line %d: want key=\"value\"", i+1))
			continue
		}
		v, err := strconv.Unquote(quoted)
		if err != nil || !strings.HasPrefix(quoted, `"`) {
			problems = append(problems, fmt.Errorf("annotations file line %d (%s): the value is not a quoted string", i+1, shorten(key)))
			continue
		}
		out[key] = v
	}
	return out, problems
}

// FromAnnotations picks the source declarations (data.autocrane.io/NAME:
// KIND:LOCATION) out of a pod's annotations.
func FromAnnotations(annotations map[string]string) Config {
	c := newConfig()
	for _, key := range slices.Sorted(maps.Keys(annotations)) {
		name, ok := strings.CutPrefix(key, spec.PrefixData)
		if !ok {
			continue
		}
		v := annotations[key]
		if !strings.Contains(v, ":") {
			c.add(name, spec.Source{}, fmt.Errorf("%s: %q names a source to consume; the data repository's pod declares sources as KIND:LOCATION", key, shorten(v)))
			continue
		}
		src, err := parse(name, v, spec.AnnotationPath(key))
		c.add(name, src, err)
	}
	return c
}

// ParseSourcesFile parses a YAML or JSON map of source names to
// KIND:LOCATION.
func ParseSourcesFile(data []byte) (Config, error) {
	var m map[string]string
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return Config{}, fmt.Errorf("sources file: want a map of names to KIND:LOCATION: %w", err)
	}
	c := newConfig()
	for _, name := range slices.Sorted(maps.Keys(m)) {
		src, err := parse(name, m[name], field.NewPath("sources").Key(name))
		c.add(name, src, err)
	}
	return c, nil
}

// ParseSourceFlag parses one --source NAME=KIND:LOCATION.
func ParseSourceFlag(v string) (spec.Source, error) {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return spec.Source{}, fmt.Errorf("--source %q: want NAME=KIND:LOCATION", shorten(spec.RedactURL(v)))
	}
	return parse(name, value, field.NewPath("--source").Key(name))
}

func parse(name, value string, p *field.Path) (spec.Source, error) {
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return spec.Source{}, fmt.Errorf("%s: source name %q must be a DNS-1123 label: %s", p, shorten(name), strings.Join(msgs, "; "))
	}
	src, ferr := spec.ParseSource(name, value, p)
	if ferr == nil {
		return src, nil
	}
	// The message repeats the value; one that may hold a credential is
	// shown redacted instead.
	kind, loc, _ := strings.Cut(value, ":")
	if redacted := kind + ":" + spec.RedactURL(loc); redacted != value {
		return spec.Source{}, fmt.Errorf("%s: Invalid value: %q: %s", ferr.Field, shorten(redacted), ferr.Detail)
	}
	return spec.Source{}, errors.New(ferr.Error())
}

// add records a declaration, or why it was refused. Names are valid DNS
// labels by then, or the error says so.
func (c *Config) add(name string, src spec.Source, err error) {
	if err != nil {
		c.Invalid[name] = err
		return
	}
	c.Sources[name] = src
}

// Merge lays higher over lower: a name declared in both takes higher's
// declaration, and the clash is a problem.
func Merge(lower, higher Config, lowerWhat, higherWhat string) Config {
	out := newConfig()
	out.Problems = append(slices.Clone(lower.Problems), higher.Problems...)
	for _, from := range []Config{lower, higher} {
		maps.Copy(out.Sources, from.Sources)
		maps.Copy(out.Invalid, from.Invalid)
	}
	for _, name := range higher.Names() {
		if _, ok := lower.Sources[name]; ok || lower.Invalid[name] != nil {
			out.Problems = append(out.Problems, fmt.Errorf("source %s is declared in %s and in %s; %s wins", name, lowerWhat, higherWhat, higherWhat))
			if _, valid := higher.Sources[name]; valid {
				delete(out.Invalid, name)
			} else {
				delete(out.Sources, name)
			}
		}
	}
	return out
}

// Loader reads every place sources are declared.
type Loader struct {
	// AnnotationsFile is the downward API annotations file; empty: none.
	AnnotationsFile string
	// SourcesFile is a YAML or JSON sources file; empty: none.
	SourcesFile string
	// Flags are the --source declarations.
	Flags []spec.Source
}

// Load reads the files and merges them: flags over the sources file over
// annotations. An error means a file could not be read at all; the caller
// keeps what it had.
func (l Loader) Load() (Config, error) {
	c := newConfig()
	if l.AnnotationsFile != "" {
		data, err := readFile(l.AnnotationsFile)
		if err != nil {
			return Config{}, err
		}
		ann, problems := ParseAnnotationsFile(data)
		c = FromAnnotations(ann)
		c.Problems = problems
	}
	if l.SourcesFile != "" {
		data, err := readFile(l.SourcesFile)
		if err != nil {
			return Config{}, err
		}
		fc, err := ParseSourcesFile(data)
		if err != nil {
			return Config{}, err
		}
		c = Merge(c, fc, "the annotations", "the sources file")
	}
	flags := newConfig()
	for _, s := range l.Flags {
		flags.Sources[s.Name] = s
	}
	return Merge(c, flags, "the files", "--source"), nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read sources from %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("read sources from %s: larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}

func shorten(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
