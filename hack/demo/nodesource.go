package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/autocrane/autocrane/spec"
)

// On a real cluster the data repository runs as a pod, and follows an http
// source that the demo serves from the host: the pods' images have no git,
// and the host is reachable from pods at its bridge address only.
const (
	// sourceFile is the one file of the source, and of each version.
	sourceFile = "version.txt"
	// repositoryPort is the Service port of config/samples' store URL,
	// http://datarepository.autocrane-demo.svc:8080.
	repositoryPort = 8080
	// webApp is config/samples' Deployment with data.
	webApp = "web"
	// webBakeSeconds is how long each wave of the web pods bakes.
	webBakeSeconds = 5
)

// httpSource serves one file whose content the demo changes: a new version.
type httpSource struct {
	url    string
	server *http.Server
	done   chan error

	mu       sync.Mutex
	content  []byte
	modified time.Time
}

// startHTTPSource serves sourceFile with content on ip, at a free port.
func startHTTPSource(ip, content string) (*httpSource, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen on the bridge address %s: %w", ip, err)
	}
	s := &httpSource{url: "http://" + ln.Addr().String() + "/" + sourceFile, done: make(chan error, 1)}
	s.set(content)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+sourceFile, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		content, modified := s.content, s.modified
		s.mu.Unlock()
		// Last-Modified: the repository's conditional GET sees a change.
		http.ServeContent(w, r, sourceFile, modified, bytes.NewReader(content))
	})
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.server.Serve(ln) }()
	return s, nil
}

// set publishes content. Last-Modified has one-second resolution: the
// time moves on by at least a second, so no change is missed.
func (s *httpSource) set(content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Truncate(time.Second)
	if !now.After(s.modified) {
		now = s.modified.Add(time.Second)
	}
	s.content, s.modified = []byte(content+"\n"), now
}

func (s *httpSource) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.server.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

// repositoryManifest is the data repository's Deployment and Service in
// config/samples' namespace, following source at url.
func repositoryManifest(url string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: datarepository, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: datarepository}}
  template:
    metadata:
      # The role label: only such pods may declare sources.
      labels: {app: datarepository, autocrane.io/role: datarepository}
      annotations: {%[2]s: "http:%[3]s"}
    spec:
      containers:
      - name: repository
        image: autocrane:dev
        command: [/usr/local/bin/datarepository]
        args: [--annotations-file=/podinfo/annotations, --root=/var/lib/repository, --listen=:9790,
               --allow-insecure=%[4]s, --poll-interval=1s]
        ports: [{containerPort: 9790}]
        readinessProbe:
          httpGet: {path: /readyz, port: 9790}
          periodSeconds: 1
        securityContext: {runAsNonRoot: true, runAsUser: 65532, allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}
        volumeMounts:
        - {name: root, mountPath: /var/lib/repository}
        - {name: podinfo, mountPath: /podinfo, readOnly: true}
      volumes:
      - {name: root, emptyDir: {}}
      - name: podinfo
        downwardAPI:
          items: [{path: annotations, fieldRef: {fieldPath: metadata.annotations}}]
---
apiVersion: v1
kind: Service
metadata: {name: datarepository, namespace: %[1]s}
spec:
  selector: {app: datarepository}
  ports: [{port: %[5]d, targetPort: 9790}]
`, demoNamespace, spec.PrefixData+dataSource, url, dataSource, repositoryPort)
}

// webAnnotations are what the demo adds to config/samples' web pods: a
// watchdog on the app, which judges each data version, quick thresholds,
// a short bake, and no evictions (the rollback is the story).
func webAnnotations() map[string]string {
	return map[string]string{
		spec.PrefixProbe + watchdogName:    fmt.Sprintf("POD_IP:%d/watchdog", samplePort),
		spec.KeyRolloutBakeSeconds:         fmt.Sprint(webBakeSeconds),
		spec.KeyWatchdogPeriodSeconds:      "1",
		spec.KeyWatchdogUnhealthyThreshold: "2",
		spec.KeyWatchdogHealthyThreshold:   "1",
		spec.KeyWatchdogEvict:              "false",
	}
}

// editWeb adds webAnnotations to the web Deployment's pod template, and
// has its app serve /data at /files/, so the demo can show what it reads.
func editWeb(obj *unstructured.Unstructured) error {
	if obj.GetKind() != "Deployment" || obj.GetNamespace() != demoNamespace || obj.GetName() != webApp {
		return nil
	}
	annotations, _, err := unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "annotations")
	if err != nil {
		return err
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	for k, v := range webAnnotations() {
		annotations[k] = v
	}
	if err := unstructured.SetNestedStringMap(obj.Object, annotations, "spec", "template", "metadata", "annotations"); err != nil {
		return err
	}
	containers, _, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
	if err != nil {
		return err
	}
	for _, c := range containers {
		if c, ok := c.(map[string]any); ok && c["name"] == "app" {
			c["args"] = []any{"--serve-files=" + webDataDir}
		}
	}
	return unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers")
}

// webDataDir is config/samples' store.autocrane.io/location; the app reads
// data deployment NAME at webDataDir/NAME.
const webDataDir = "/data"

// fileURL is where a web pod's app serves the data file it reads.
func fileURL(podIP string) string {
	return "http://" + net.JoinHostPort(podIP, fmt.Sprint(samplePort)) + "/files/" + dataSource + "/" + sourceFile
}
