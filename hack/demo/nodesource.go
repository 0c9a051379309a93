package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// httpSource serves one file, sourceFile in a directory of its own: a new
// content is a new version. The demo changes it, and so can a user.
type httpSource struct {
	url    string
	dir    string
	server *http.Server
	done   chan error
}

// startHTTPSource serves sourceFile with content on ip, at a free port.
func startHTTPSource(ip, content string) (*httpSource, error) {
	dir, err := os.MkdirTemp("", "autocrane-demo-source-")
	if err != nil {
		return nil, fmt.Errorf("create the source's directory: %w", err)
	}
	s := &httpSource{dir: dir, done: make(chan error, 1)}
	if err := s.set(content); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("listen on the bridge address %s: %w", ip, err), os.RemoveAll(dir))
	}
	s.url = "http://" + ln.Addr().String() + "/" + sourceFile
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+sourceFile, s.serve)
	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { s.done <- s.server.Serve(ln) }()
	return s, nil
}

// path is the file the source serves.
func (s *httpSource) path() string { return filepath.Join(s.dir, sourceFile) }

// serve answers with the file and an ETag of its content, so that the
// repository's conditional GET sees every change, even two within the
// second that Last-Modified can tell apart.
func (s *httpSource) serve(w http.ResponseWriter, r *http.Request) {
	content, err := os.ReadFile(s.path())
	if err != nil {
		http.Error(w, "the demo's source file is missing: "+err.Error(), http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(content)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	http.ServeContent(w, r, sourceFile, time.Time{}, bytes.NewReader(content))
}

// set publishes content: written beside the file, then renamed over it.
func (s *httpSource) set(content string) error {
	tmp := s.path() + ".new"
	if err := os.WriteFile(tmp, []byte(content+"\n"), 0o644); err != nil {
		return fmt.Errorf("write the source: %w", err)
	}
	if err := os.Rename(tmp, s.path()); err != nil {
		return fmt.Errorf("write the source: %w", err)
	}
	return nil
}

// stop stops serving and removes the directory.
func (s *httpSource) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.server.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return errors.Join(err, os.RemoveAll(s.dir))
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
