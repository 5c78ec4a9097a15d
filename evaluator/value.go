package evaluator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// value is a JSON value parsed once at compile or apply time. raw is its
// compact encoding (nil means "no value") and v the pre-boxed decoded form
// handed out in Result.Value, so evaluation never parses or allocates.
type value struct {
	raw json.RawMessage
	v   any
	b   bool // the value is JSON true
}

func (v value) present() bool { return v.raw != nil }

// isAbsent reports whether a raw JSON field is omitted or JSON null.
func isAbsent(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// jsonKind names the JSON kind of a compact, valid JSON text.
func jsonKind(c []byte) string {
	switch c[0] {
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	default:
		return "number"
	}
}

// parseTyped validates that raw is a single JSON value of type t and returns
// its parsed form. It does not check the schema.
func parseTyped(t FlagType, raw json.RawMessage) (value, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return value{}, fmt.Errorf("invalid json: %w", err)
	}
	c := buf.Bytes()
	if len(c) == 0 {
		return value{}, errors.New("invalid json: empty value")
	}
	kind := jsonKind(c)
	mismatch := func(want string) error {
		return fmt.Errorf("%s flag needs a json %s, got %s", strings.ToLower(string(t)), want, kind)
	}
	switch t {
	case TypeBoolean:
		if kind != "boolean" {
			return value{}, mismatch("boolean")
		}
		return value{raw: c, v: c[0] == 't', b: c[0] == 't'}, nil
	case TypeString:
		if kind != "string" {
			return value{}, mismatch("string")
		}
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return value{}, fmt.Errorf("invalid string: %w", err)
		}
		return value{raw: c, v: s}, nil
	case TypeNumber:
		if kind != "number" {
			return value{}, mismatch("number")
		}
		var f float64
		if err := json.Unmarshal(c, &f); err != nil {
			return value{}, fmt.Errorf("invalid number: %w", err)
		}
		return value{raw: c, v: f}, nil
	case TypeObject:
		if kind != "object" {
			return value{}, mismatch("object")
		}
		var m map[string]any
		if err := json.Unmarshal(c, &m); err != nil {
			return value{}, fmt.Errorf("invalid object: %w", err)
		}
		return value{raw: c, v: m}, nil
	default:
		return value{}, fmt.Errorf("unsupported flag type %q", t)
	}
}

// schemaURL is the in-memory location the flag schema is compiled under.
// Nothing is ever loaded from it.
const schemaURL = "flagops:///flag-schema.json"

// denyLoader refuses every external schema reference so that compiling a
// schema never touches the file system or the network.
type denyLoader struct{}

func (denyLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema reference %q is not allowed", url)
}

// compileSchema compiles a JSON Schema document (draft 2020-12 by default).
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, []byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, nil, fmt.Errorf("invalid json: %w", err)
	}
	c := buf.Bytes()
	if k := jsonKind(c); k != "object" && k != "boolean" {
		return nil, nil, fmt.Errorf("schema must be a json object or boolean, got %s", k)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(c))
	if err != nil {
		return nil, nil, fmt.Errorf("invalid json: %w", err)
	}
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.UseLoader(denyLoader{})
	if err := comp.AddResource(schemaURL, doc); err != nil {
		return nil, nil, fmt.Errorf("invalid schema: %w", err)
	}
	sch, err := comp.Compile(schemaURL)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid schema: %w", flatten(err))
	}
	return sch, c, nil
}

// validateSchema checks a compact JSON value against a compiled schema.
func validateSchema(sch *jsonschema.Schema, c []byte) error {
	if sch == nil {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(c))
	if err != nil {
		return fmt.Errorf("invalid json: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return flatten(err)
	}
	return nil
}

// flatError keeps an error in the chain while presenting its message on one
// line.
type flatError struct {
	msg string
	err error
}

func (e *flatError) Error() string { return e.msg }
func (e *flatError) Unwrap() error { return e.err }

func flatten(err error) error { return &flatError{msg: oneLine(err), err: err} }

// oneLine flattens the multi-line messages of the schema library and drops
// its internal schema location so messages fit in a status condition.
func oneLine(err error) string {
	lines := strings.Split(err.Error(), "\n")
	parts := make([]string, 0, len(lines))
	for _, l := range lines {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(l, "- ")
		l = strings.TrimPrefix(l, "at '': ")
		if l == "" || strings.HasPrefix(l, "jsonschema validation failed") {
			continue
		}
		parts = append(parts, l)
	}
	if len(parts) == 0 {
		return strings.TrimSpace(err.Error())
	}
	return strings.Join(parts, "; ")
}
