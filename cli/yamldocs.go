package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// document is one document of an input stream.
type document struct {
	// where names it in messages: "FILE: document N", N counted from 1.
	where string
	// json is the document converted to JSON; nil for an empty document
	// (only white space, comments or null).
	json []byte
}

// splitDocuments splits one input into documents and converts each to JSON.
// A stream whose first non-space byte is '{' is read as JSON objects, one
// after another (as kubectl does); anything else as YAML documents separated
// by "---" lines. A YAML document that does not parse is an error naming it;
// the other documents are still checked, so every such error is reported at
// once.
func splitDocuments(source string, data []byte) ([]document, error) {
	if utilyaml.IsJSONBuffer(data) {
		return splitJSON(source, data)
	}
	var docs []document
	var errs []error
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for n := 1; ; n++ {
		where := fmt.Sprintf("%s: document %d", source, n)
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// Only a malformed "---" line or a read error get here; the
			// reader cannot go on after either.
			errs = append(errs, fmt.Errorf("%s: invalid YAML: %w", where, err))
			break
		}
		// Strict: a key given twice (two values for one annotation) is an
		// error rather than a silent choice.
		j, err := yaml.YAMLToJSONStrict(chunk)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid YAML: %w", where, err))
			continue
		}
		docs = append(docs, document{where: where, json: nonNull(j)})
	}
	return docs, errors.Join(errs...)
}

func splitJSON(source string, data []byte) ([]document, error) {
	var docs []document
	dec := json.NewDecoder(bytes.NewReader(data))
	for n := 1; ; n++ {
		where := fmt.Sprintf("%s: document %d", source, n)
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: invalid JSON: %w", where, err)
		}
		docs = append(docs, document{where: where, json: nonNull(raw)})
	}
}

// nonNull returns nil for the JSON null of an empty document.
func nonNull(j []byte) []byte {
	if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
		return nil
	}
	return j
}

// writeYAML writes each JSON document as YAML, separated by "---" lines.
// sigs.k8s.io/yaml sorts the keys of every mapping.
func writeYAML(w *bytes.Buffer, docs [][]byte) error {
	for i, d := range docs {
		y, err := yaml.JSONToYAML(d)
		if err != nil {
			return fmt.Errorf("encode output document %d as YAML: %w", i+1, err)
		}
		if i > 0 {
			w.WriteString("---\n")
		}
		w.Write(y)
	}
	return nil
}
