/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package localdir

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	strictjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
	"github.com/flagops/flagops/internal/entries"
)

// The kinds a directory may hold.
const (
	kindFeatureFlag    = "FeatureFlag"
	kindUserOverride   = "UserFlagOverride"
	kindDeviceOverride = "DeviceFlagOverride"
)

// document is one non-empty document of a file, decoded into a generic object.
type document struct {
	file  string
	index int // 1-based
	kind  string
	name  string
	// namespace is metadata.namespace as written; empty means the default namespace.
	namespace string
	obj       map[string]any
}

func (d *document) object() string {
	if d.kind == "" {
		return ""
	}
	if d.name == "" {
		return d.kind + " (no name)"
	}
	return d.kind + " " + d.name
}

func (d *document) fail(fieldPath string, err error) FileError {
	return FileError{File: d.file, Doc: d.index, Object: d.object(), Field: fieldPath, Err: err}
}

// object is a validated object.
type object struct {
	doc       *document
	kind      string
	namespace string
	name      string

	flag     *v1.FeatureFlag
	key      string // the flag key (adapt.FlagKey)
	compiled *evaluator.Flag

	// Overrides: the subject kind and ID, and the spec shared by both kinds.
	subjectKind evaluator.SubjectKind
	subject     string
	spec        *v1.FlagOverrideSpec
	override    evaluator.Override
}

// splitDocuments splits a file into its YAML documents. A JSON file is one document.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, fmt.Errorf("split YAML documents: %w", err)
		}
		docs = append(docs, doc)
	}
}

// decodeFile splits data into documents and decodes each, skipping empty ones. It returns
// the documents that decoded and an error for each that did not.
func decodeFile(file string, data []byte) ([]*document, []FileError) {
	raws, err := splitDocuments(data)
	var errs []FileError
	if err != nil {
		errs = append(errs, FileError{File: file, Doc: len(raws) + 1, Err: err})
	}
	var docs []*document
	for i, raw := range raws {
		d := &document{file: file, index: i + 1}
		ok, err := d.decode(raw)
		switch {
		case err != nil:
			errs = append(errs, d.fail("", err))
		case ok:
			docs = append(docs, d)
		}
	}
	return docs, errs
}

// decode parses raw (YAML or JSON) into d. It reports false for an empty document (only
// comments or whitespace).
func (d *document) decode(raw []byte) (bool, error) {
	// Strict: duplicate keys are errors, as with the API server's strict field validation.
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return false, fmt.Errorf("invalid YAML: %w", err)
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || string(js) == "null" {
		return false, nil
	}
	if js[0] != '{' {
		return false, errors.New("invalid document: not an object")
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return false, fmt.Errorf("invalid document: %w", err)
	}
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	if meta, ok := obj["metadata"].(map[string]any); ok {
		d.name, _ = meta["name"].(string)
		d.namespace, _ = meta["namespace"].(string)
	}
	switch kind {
	case kindFeatureFlag, kindUserOverride, kindDeviceOverride:
		if apiVersion == v1.GroupVersion.String() {
			d.kind, d.obj = kind, obj
			return true, nil
		}
	}
	return false, fmt.Errorf("unsupported object (apiVersion %q, kind %q): want apiVersion %s and kind %s, %s or %s",
		apiVersion, kind, v1.GroupVersion, kindFeatureFlag, kindUserOverride, kindDeviceOverride)
}

// validate checks d as the API server, the admission policy and the FeatureFlag webhook
// would on create, in namespace ns when the document names none. Like the API server it
// stops after the first stage that fails: strict decoding, then for overrides the entries
// webhook (package internal/entries), then the CRD schema with its CEL rules, then the
// webhook.
func (d *document) validate(ctx context.Context, ns string) (*object, []FileError) {
	all, err := schemas()
	if err != nil {
		return nil, []FileError{d.fail("", fmt.Errorf("load CRD schemas: %w", err))}
	}
	s := all[d.kind]

	// 1. Strict decoding: unknown fields.
	var errs []FileError
	unknown, metaErr := s.unknownFields(d.obj)
	if metaErr != nil {
		errs = append(errs, d.fail(metaErr.Field, metaErr))
	}
	for _, p := range unknown {
		errs = append(errs, d.fail(p, fmt.Errorf("unknown field %q", p)))
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// 1b. The override-entries webhook, which the API server calls before it checks the
	// schema (the schema would drop a null value, and report a repeated key generically).
	if d.kind != kindFeatureFlag {
		for _, e := range entries.Check(d.obj) {
			errs = append(errs, d.fail(e.Field, e))
		}
		if len(errs) > 0 {
			return nil, errs
		}
	}

	// 2. The CRD: defaults, metadata, OpenAPI schema, list types, CEL. Status is ignored on
	// create, as the status subresource does.
	delete(d.obj, "status")
	if d.namespace == "" {
		meta, ok := d.obj["metadata"].(map[string]any)
		if !ok {
			meta = map[string]any{}
			d.obj["metadata"] = meta
		}
		meta["namespace"] = ns
	}
	for _, fe := range s.validate(ctx, d.obj) {
		errs = append(errs, d.fail(fe.Field, fe))
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// Typed decoding, strictly (the schema already rejected what this would).
	js, err := json.Marshal(d.obj)
	if err != nil {
		return nil, []FileError{d.fail("", fmt.Errorf("encode object: %w", err))}
	}
	o := &object{doc: d, kind: d.kind}
	var target any
	switch d.kind {
	case kindFeatureFlag:
		o.flag = &v1.FeatureFlag{}
		target = o.flag
	case kindUserOverride:
		target = &v1.UserFlagOverride{}
	default:
		target = &v1.DeviceFlagOverride{}
	}
	strict, err := strictjson.UnmarshalStrict(js, target)
	if err != nil {
		return nil, []FileError{d.fail("", fmt.Errorf("decode %s: %w", d.kind, err))}
	}
	for _, se := range strict {
		errs = append(errs, d.fail("", fmt.Errorf("strict decoding: %w", se)))
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// 3. The admission policy and the FeatureFlag webhook: the spec compiles.
	switch t := target.(type) {
	case *v1.FeatureFlag:
		o.namespace, o.name, o.key = t.Namespace, t.Name, adapt.FlagKey(t)
		o.compiled, err = evaluator.Compile(o.key, adapt.FlagSpec(t))
		if err != nil {
			return nil, compileErrors(d, t, err)
		}
	case *v1.UserFlagOverride:
		o.namespace, o.name = t.Namespace, t.Name
		o.subjectKind, o.subject, o.spec = evaluator.SubjectUser, t.Spec.UserID, &t.Spec.FlagOverrideSpec
		o.override = adapt.UserOverride(t)
	case *v1.DeviceFlagOverride:
		o.namespace, o.name = t.Namespace, t.Name
		o.subjectKind, o.subject, o.spec = evaluator.SubjectDevice, t.Spec.DeviceID, &t.Spec.FlagOverrideSpec
		o.override = adapt.DeviceOverride(t)
	}
	return o, nil
}

// compileErrors turns the evaluator's field errors into file errors.
func compileErrors(d *document, f *v1.FeatureFlag, err error) []FileError {
	var errs []FileError
	for _, fe := range evaluator.FieldErrors(err) {
		if fe.Field == "key" {
			fe = &evaluator.FieldError{Field: adapt.FlagKeyField(f), Detail: fe.Detail, Err: fe.Err}
		}
		errs = append(errs, d.fail(fe.Field, fe))
	}
	if len(errs) == 0 {
		errs = append(errs, d.fail("spec", fmt.Errorf("spec: %w", err)))
	}
	return errs
}

// flagKey returns the key of a FeatureFlag document that may not be valid: spec.key when it
// is a string, metadata.name otherwise.
func (d *document) flagKey() string {
	if spec, ok := d.obj["spec"].(map[string]any); ok {
		if k, ok := spec["key"].(string); ok && k != "" {
			return k
		}
	}
	return d.name
}
