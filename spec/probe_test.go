package spec

import (
	"testing"
)

func TestParseProbe(t *testing.T) {
	const pre = "metadata.annotations[probe.autocrane.io/web]: Invalid value: "
	const form = "; accepted form: POD_IP:PORT/PATH, http://POD_IP:PORT/PATH or https://POD_IP:PORT/PATH"
	p := AnnotationPath(PrefixProbe + "web")
	tests := map[string]struct {
		in      string
		want    Probe
		wantErr string
	}{
		"plain":            {in: "POD_IP:8080/watchdog", want: Probe{Name: "web", Scheme: "http", Port: 8080, Path: "/watchdog"}},
		"https":            {in: "https://POD_IP:8443/healthz", want: Probe{Name: "web", Scheme: "https", Port: 8443, Path: "/healthz"}},
		"explicit http":    {in: "http://POD_IP:80/", want: Probe{Name: "web", Scheme: "http", Port: 80, Path: "/"}},
		"query":            {in: "POD_IP:80/w?deep=1", want: Probe{Name: "web", Scheme: "http", Port: 80, Path: "/w?deep=1"}},
		"literal ip":       {in: "10.0.0.1:80/w", wantErr: pre + `"10.0.0.1:80/w": the host must be the literal POD_IP (the pod's own IP), not "10.0.0.1"` + form},
		"localhost":        {in: "localhost:80/w", wantErr: pre + `"localhost:80/w": the host must be the literal POD_IP (the pod's own IP), not "localhost"` + form},
		"userinfo":         {in: "POD_IP@evil:80/w", wantErr: pre + `"POD_IP@evil:80/w": the host must be POD_IP, without userinfo` + form},
		"userinfo at end":  {in: "POD_IP:80@evil.example/w", wantErr: pre + `"POD_IP:80@evil.example/w": the host must be POD_IP, without userinfo` + form},
		"other url":        {in: "http://x/", wantErr: pre + `"http://x/": must be POD_IP:PORT followed by a path` + form},
		"hex ip":           {in: "0x0a000001:80/w", wantErr: pre + `"0x0a000001:80/w": the host must be the literal POD_IP (the pod's own IP), not "0x0a000001"` + form},
		"decimal ip":       {in: "167772161:80/w", wantErr: pre + `"167772161:80/w": the host must be the literal POD_IP (the pod's own IP), not "167772161"` + form},
		"mapped ipv6":      {in: "[::ffff:10.0.0.1]:80/w", wantErr: pre + `"[::ffff:10.0.0.1]:80/w": the host must be POD_IP, without userinfo` + form},
		"lowercase pod_ip": {in: "pod_ip:80/w", wantErr: pre + `"pod_ip:80/w": the host must be the literal POD_IP (the pod's own IP), not "pod_ip"` + form},
		"no path":          {in: "POD_IP:80", wantErr: pre + `"POD_IP:80": must have a path after the port` + form},
		"no port":          {in: "POD_IP/w", wantErr: pre + `"POD_IP/w": must be POD_IP:PORT followed by a path` + form},
		"port zero":        {in: "POD_IP:0/w", wantErr: pre + `"POD_IP:0/w": port must be a number from 1 to 65535` + form},
		"port leading 0":   {in: "POD_IP:080/w", wantErr: pre + `"POD_IP:080/w": port must be a number from 1 to 65535` + form},
		"port too big":     {in: "POD_IP:70000/w", wantErr: pre + `"POD_IP:70000/w": port must be a number from 1 to 65535` + form},
		"fragment":         {in: "POD_IP:80/w#x", wantErr: pre + `"POD_IP:80/w#x": the path must not contain a fragment (#) or a backslash` + form},
		"backslash":        {in: `POD_IP:80/\\evil`, wantErr: pre + `"POD_IP:80/\\\\evil": the path must not contain a fragment (#) or a backslash` + form},
		"crlf":             {in: "POD_IP:80/w\r\nHost: evil", wantErr: pre + `"POD_IP:80/w\r\nHost: evil": must not contain white space, control or non-ASCII characters` + form},
		"unicode":          {in: "POD_IP:80/wé", wantErr: pre + `"POD_IP:80/wé": must not contain white space, control or non-ASCII characters` + form},
		"ftp":              {in: "ftp://POD_IP:21/w", wantErr: pre + `"ftp://POD_IP:21/w": scheme must be http or https` + form},
		"double slash":     {in: "POD_IP:80//evil.example/x", want: Probe{Name: "web", Scheme: "http", Port: 80, Path: "//evil.example/x"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseProbe("web", tc.in, p)
			if errText(err) != tc.wantErr {
				t.Fatalf("error:\n got %q\nwant %q", errText(err), tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestProbeURLStaysOnThePod(t *testing.T) {
	tests := map[string]struct {
		probe, ip, want string
	}{
		"ipv4":                 {"POD_IP:8080/w", "10.1.2.3", "http://10.1.2.3:8080/w"},
		"ipv6":                 {"https://POD_IP:8443/w", "fd00::5", "https://[fd00::5]:8443/w"},
		"double slash is path": {"POD_IP:80//evil.example/x", "10.1.2.3", "http://10.1.2.3:80//evil.example/x"},
	}
	for name, tc := range tests {
		pr, err := ParseProbe("w", tc.probe, AnnotationPath(PrefixProbe+"w"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := pr.URL(tc.ip); got != tc.want {
			t.Errorf("%s: URL = %q, want %q", name, got, tc.want)
		}
	}
}

func TestProbeNameMustBeALabel(t *testing.T) {
	if _, err := ParseProbe("Web_1", "POD_IP:80/w", AnnotationPath(PrefixProbe+"Web_1")); err == nil {
		t.Fatal("accepted a bad watchdog name")
	}
}
