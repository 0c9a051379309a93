package datarepository

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/autocrane/autocrane/sidecars/datarepository/internal/store"
	"github.com/autocrane/autocrane/spec"
)

// maxPinsBody bounds a PUT of pins: MaxPins ids of at most 63 bytes, with
// room to spare.
const maxPinsBody = 16 << 10

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	api := http.NewServeMux()
	api.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	api.HandleFunc("GET "+PathSources, s.ifReady(s.listSources))
	api.HandleFunc("GET "+PathSources+"/{name}", s.ifReady(s.getSource))
	api.HandleFunc("POST "+PathSources+"/{name}/sync", s.ifReady(s.syncSource))
	api.HandleFunc("PUT "+PathSources+"/{name}/pins", s.ifReady(s.putPins))
	api.HandleFunc("GET "+PathBlobs+"{digest}", s.ifReady(s.getBlob))
	mux.Handle("/", s.authorize(api))
	return mux
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		writeText(w, http.StatusServiceUnavailable, "not ready: loading the store and the sources")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// ifReady answers 503 until the store and the sources are loaded.
func (s *Server) ifReady(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "not ready: loading the store and the sources")
			return
		}
		h(w, r)
	}
}

// authorize requires the bearer token, when one is configured.
func (s *Server) authorize(h http.Handler) http.Handler {
	if s.token == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.token.matches(got) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="autocrane-datarepository"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) listSources(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	names := make([]string, 0, len(s.runners))
	for name := range s.runners {
		names = append(names, name)
	}
	s.mu.Unlock()
	slices.Sort(names)
	list := SourceList{Sources: []SourceStatus{}}
	for _, name := range names {
		if st, ok := s.status(name); ok {
			list.Sources = append(list.Sources, st)
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// sourceName reads and checks the {name} of a request.
func sourceName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return "", fmt.Errorf("source name %q is not a DNS-1123 label", shorten(name))
	}
	return name, nil
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request) {
	name, err := sourceName(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, ok := s.status(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown source %q", name))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) syncSource(w http.ResponseWriter, r *http.Request) {
	name, err := sourceName(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	run := s.runner(name)
	if run == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown source %q", name))
		return
	}
	run.syncNow()
	writeJSON(w, http.StatusAccepted, SyncResponse{Source: name, Queued: true})
}

// decodePins reads a PinsRequest: strict JSON, at most MaxPins valid ids.
func decodePins(body io.Reader) ([]string, error) {
	dec := json.NewDecoder(io.LimitReader(body, maxPinsBody+1))
	dec.DisallowUnknownFields()
	var req PinsRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf(`body must be {"versions":["ID",...]}: %s`, shorten(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New(`body must be one JSON object {"versions":["ID",...]}`)
	}
	if req.Versions == nil {
		return nil, errors.New(`"versions" is required; send [] to unpin all`)
	}
	if len(req.Versions) > MaxPins {
		return nil, fmt.Errorf("at most %d pins, not %d", MaxPins, len(req.Versions))
	}
	for _, id := range req.Versions {
		if err := spec.ValidateVersionID(id); err != nil {
			return nil, err
		}
	}
	return req.Versions, nil
}

func (s *Server) putPins(w http.ResponseWriter, r *http.Request) {
	name, err := sourceName(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	run := s.runner(name)
	if run == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown source %q", name))
		return
	}
	ids, err := decodePins(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	src, err := s.store.SetPins(name, ids)
	switch {
	case errors.Is(err, store.ErrUnknownVersion), errors.Is(err, store.ErrUnknownSource):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil && src.Name == "":
		s.log.Error(err, "setting pins failed", "source", name)
		writeError(w, http.StatusInternalServerError, "setting pins failed; see the repository's log")
		return
	case err != nil:
		// The pins are stored; only collecting blobs failed.
		s.log.Error(err, "garbage collection after new pins failed", "source", name)
	}
	s.metrics.versions.WithLabelValues(name).Set(float64(len(src.Versions)))
	s.log.Info("pins set", "source", name, "pins", ids)
	writeJSON(w, http.StatusOK, statusOf(src, run.status()))
}

// getBlob serves a blob by its digest, with Range, If-Range and
// If-None-Match (http.ServeContent). The digest is checked before it
// becomes a file name, and only as its 64 hex digits.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	path, err := s.store.BlobPath(digest)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no blob %s", digest))
		return
	}
	if err != nil {
		s.log.Error(err, "opening a blob failed", "digest", digest)
		writeError(w, http.StatusInternalServerError, "opening the blob failed")
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", BlobContentType)
	w.Header().Set("ETag", `"`+digest+`"`)
	// Content-addressed: a digest's bytes never change.
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Time{}, f)
	s.metrics.bytesServed.Add(float64(cw.n))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	data, _ := json.Marshal(ErrorResponse{Error: spec.SanitizeMessage(msg)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(data, '\n'))
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

func shorten(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
