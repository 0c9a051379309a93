package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/autocrane/autocrane/injector"
	"github.com/autocrane/autocrane/spec"
	corev1 "k8s.io/api/core/v1"
)

// ErrUsage matches every *UsageError: errors.Is(err, ErrUsage).
var ErrUsage = errors.New("usage error")

// UsageError is returned for bad command-line arguments, and for -h/--help
// (then wrapping flag.ErrHelp). Inject has already printed the problem and
// the manual to stderr. Callers exit with 0 when errors.Is(err,
// flag.ErrHelp), else with 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUsage) true.
func (e *UsageError) Is(target error) bool { return target == ErrUsage }

// injectOptions are inject's parsed flags.
type injectOptions struct {
	files         []string
	namespaceFile string
	cfg           injector.Config
}

// Inject runs "autocrane inject"; args are the arguments after "inject".
// It reads the files named by -f (stdin for "-") and writes the injected
// manifests to stdout only when every document succeeded. Otherwise it
// writes nothing to stdout and returns the error for the caller to print;
// to stderr it writes only the flag problems and the manual of a
// *UsageError.
func Inject(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	opts, err := parseInjectFlags(args, stderr)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := runInject(ctx, opts, stdin, &out); err != nil {
		return err
	}
	_, err = stdout.Write(out.Bytes())
	return err
}

func parseInjectFlags(args []string, stderr io.Writer) (injectOptions, error) {
	opts := injectOptions{cfg: injector.DefaultConfig()}
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, InjectHelp()) }

	files := (*fileList)(&opts.files)
	fs.Var(files, "f", "")
	fs.Var(files, "filename", "")
	fs.Var((*sidecarModeValue)(&opts.cfg.SidecarMode), "sidecar-mode", "")
	fs.StringVar(&opts.cfg.DataDeployerImage, "datadeployer-image", opts.cfg.DataDeployerImage, "")
	fs.StringVar(&opts.cfg.WatchdogHealthzImage, "watchdoghealthz-image", opts.cfg.WatchdogHealthzImage, "")
	fs.Var((*portValue)(&opts.cfg.DataDeployerPort), "datadeployer-port", "")
	fs.Var((*portValue)(&opts.cfg.WatchdogHealthzPort), "watchdoghealthz-port", "")
	fs.Var((*pullPolicyValue)(&opts.cfg.ImagePullPolicy), "image-pull-policy", "")
	fs.StringVar(&opts.namespaceFile, "namespace-file", "", "")

	if err := fs.Parse(args); err != nil {
		// The flag package printed the problem and the manual.
		return opts, &UsageError{Err: err}
	}
	usage := func(format string, a ...any) error {
		err := fmt.Errorf(format, a...)
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return &UsageError{Err: err}
	}
	switch {
	case fs.NArg() > 0:
		return opts, usage("unexpected argument %q: name input files with -f", fs.Arg(0))
	case len(opts.files) == 0:
		return opts, usage("-f/--filename is required (use -f - for stdin)")
	case opts.cfg.DataDeployerImage == "":
		return opts, usage("--datadeployer-image must not be empty")
	case opts.cfg.WatchdogHealthzImage == "":
		return opts, usage("--watchdoghealthz-image must not be empty")
	}
	stdins := 0
	for _, f := range opts.files {
		if f == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return opts, usage("-f - (stdin) can be given once")
	}
	if err := opts.cfg.Validate(); err != nil {
		return opts, usage("invalid flags: %w", err)
	}
	return opts, nil
}

// runInject does inject's work and writes its output to out.
func runInject(ctx context.Context, opts injectOptions, stdin io.Reader, out *bytes.Buffer) error {
	in := &injection{cfg: opts.cfg, namespaces: map[string]spec.Namespace{}}
	if opts.namespaceFile != "" {
		ns, err := readNamespaceFile(opts.namespaceFile)
		if err != nil {
			return err
		}
		in.nsFile = &ns
	}

	var docs []document
	var errs []error
	for _, f := range opts.files {
		data, source, err := readInput(f, stdin)
		if err != nil {
			return err
		}
		d, err := splitDocuments(source, data)
		docs = append(docs, d...)
		errs = append(errs, err)
	}
	for _, d := range docs {
		if d.json != nil {
			errs = append(errs, in.collectNamespaces(d.json, d.where))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	var results [][]byte
	for _, d := range docs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.json == nil {
			continue
		}
		res, err := in.object(d.json, d.where)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		results = append(results, res)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return writeYAML(out, results)
}

// readInput reads a file, or stdin for "-". source names it in messages.
func readInput(name string, stdin io.Reader) (data []byte, source string, err error) {
	if name == "-" {
		data, err = io.ReadAll(stdin)
		if err != nil {
			return nil, "", fmt.Errorf("read stdin: %w", err)
		}
		return data, "stdin", nil
	}
	data, err = os.ReadFile(name)
	if err != nil {
		return nil, "", err
	}
	return data, name, nil
}

// readNamespaceFile reads --namespace-file: one Namespace document.
func readNamespaceFile(name string) (spec.Namespace, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return spec.Namespace{}, fmt.Errorf("--namespace-file: %w", err)
	}
	docs, err := splitDocuments(name, data)
	if err != nil {
		return spec.Namespace{}, fmt.Errorf("--namespace-file: %w", err)
	}
	var found []document
	for _, d := range docs {
		if d.json != nil {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return spec.Namespace{}, fmt.Errorf("--namespace-file %s: must hold one Namespace document, not %d documents", name, len(found))
	}
	_, gk, err := decodeHead(found[0].json)
	if err == nil && gk != kindNamespace {
		err = fmt.Errorf("kind %s: must be a Namespace (v1)", gk)
	}
	if err != nil {
		return spec.Namespace{}, fmt.Errorf("--namespace-file: %s: %w", found[0].where, err)
	}
	ns, err := decodeNamespace(found[0].json)
	if err != nil {
		return spec.Namespace{}, fmt.Errorf("--namespace-file: %s: %w", found[0].where, err)
	}
	return ns, nil
}

// fileList is the repeatable -f flag.
type fileList []string

func (f *fileList) String() string { return strings.Join(*f, ",") }

func (f *fileList) Set(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	*f = append(*f, v)
	return nil
}

type sidecarModeValue spec.SidecarMode

func (m *sidecarModeValue) String() string { return string(*m) }

func (m *sidecarModeValue) Set(v string) error {
	if _, err := spec.ParseSidecarMode(v, nil); err != nil {
		return fmt.Errorf("must be %s or %s", spec.SidecarNative, spec.SidecarClassic)
	}
	*m = sidecarModeValue(v)
	return nil
}

type pullPolicyValue corev1.PullPolicy

func (p *pullPolicyValue) String() string { return string(*p) }

func (p *pullPolicyValue) Set(v string) error {
	switch corev1.PullPolicy(v) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		*p = pullPolicyValue(v)
		return nil
	}
	return fmt.Errorf("must be %s, %s or %s", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)
}

type portValue int32

func (p *portValue) String() string { return strconv.Itoa(int(*p)) }

func (p *portValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return errors.New("must be a port number from 1 to 65535")
	}
	*p = portValue(n)
	return nil
}
