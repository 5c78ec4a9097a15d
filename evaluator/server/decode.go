package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flagops/flagops/evaluator"
)

// limits bound the evaluation context of a request.
type limits struct {
	maxAttrs     int
	maxAttrBytes int
}

// request is a decoded evaluation request.
type request struct {
	ctx evaluator.Context
	// flags lists the requested keys (native API), nil for all.
	flags []string
}

// bodyKind says which members a request body may have.
type bodyKind uint8

const (
	// ofrepBody is an OFREP evaluation request: {"context":{...}}.
	ofrepBody bodyKind = iota
	// nativeBody is a native evaluation request: {"context":{...},"flags":[...]}.
	nativeBody
)

// members lists the member names a body of kind k may have, for error
// messages.
func (k bodyKind) members() string {
	if k == nativeBody {
		return `"context" and "flags"`
	}
	return `"context"`
}

// Member names of request bodies.
const (
	memberContext = "context"
	memberFlags   = "flags"
)

// wireRequest is a request body as encoding/json reads it.
type wireRequest struct {
	Context map[string]any
	Flags   []string
}

// decodeRequest decodes a request body of the given kind and validates the
// context against lim. Member names match exactly (case-sensitive, after
// JSON unescaping); the body may have only the members of its kind, each at
// most once, and the context may name each attribute at most once. An empty
// body and null are an empty request.
//
// Errors are *requestError values carrying the error code: PARSE_ERROR for
// malformed JSON, a body that is not an object, an unknown or repeated
// member, or a malformed flags list; INVALID_CONTEXT for a context that is
// not an object, names an attribute twice, has too many or too large
// attributes or attributes of unsupported types.
func decodeRequest(body []byte, lim limits, kind bodyKind) (request, error) {
	var req request
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if !stdJSON {
		if req, ok := fastDecode(body, lim, kind); ok {
			return req, nil
		}
	}
	return slowRequest(body, lim, kind)
}

// slowRequest is decodeRequest with encoding/json: it accepts every valid
// request and reports every error.
func slowRequest(body []byte, lim limits, kind bodyKind) (request, error) {
	var req request
	wire, err := slowDecode(body, kind)
	if err != nil {
		return req, err
	}
	for i, k := range wire.Flags {
		if k == "" {
			return req, &requestError{code: codeParse, err: fmt.Errorf("flags[%d]: must not be empty", i)}
		}
	}
	ctx, err := contextFromMap(wire.Context, lim)
	if err != nil {
		return req, err
	}
	req.ctx = ctx
	req.flags = wire.Flags
	return req, nil
}

// slowDecode reads the body token by token, so that it sees every member
// name as written: encoding/json's struct decoding would match names
// case-insensitively, skip unknown members and let a repeated member win.
func slowDecode(body []byte, kind bodyKind) (wireRequest, error) {
	var wire wireRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return wire, decodeError(err)
	}
	switch tok {
	case nil:
		// null is an empty request, like an empty body.
	case json.Delim('{'):
		if err := decodeMembers(dec, kind, &wire); err != nil {
			return wire, err
		}
	default:
		return wire, &requestError{code: codeParse, err: fmt.Errorf("request body must be a JSON object, got %s", tokenKind(tok))}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return wire, &requestError{code: codeParse, err: errors.New("unexpected data after the JSON object")}
	}
	return wire, nil
}

// decodeMembers reads the members of the request object after its '{' and
// its closing '}'.
func decodeMembers(dec *json.Decoder, kind bodyKind, wire *wireRequest) error {
	var seenCtx, seenFlags bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return decodeError(err)
		}
		name, _ := tok.(string)
		switch {
		case name == memberContext:
			if seenCtx {
				return repeatedMember(name)
			}
			seenCtx = true
			if wire.Context, err = decodeContext(dec); err != nil {
				return err
			}
		case name == memberFlags && kind == nativeBody:
			if seenFlags {
				return repeatedMember(name)
			}
			seenFlags = true
			if err := dec.Decode(&wire.Flags); err != nil {
				var ute *json.UnmarshalTypeError
				if errors.As(err, &ute) {
					return &requestError{code: codeParse, err: fmt.Errorf("flags: must be an array of strings, got %s: %w", ute.Value, err)}
				}
				return decodeError(err)
			}
		default:
			return &requestError{code: codeParse, err: fmt.Errorf("request body: unknown member %q (member names are case-sensitive; want %s)", name, kind.members())}
		}
	}
	_, err := dec.Token() // '}'
	if err != nil {
		return decodeError(err)
	}
	return nil
}

func repeatedMember(name string) error {
	return &requestError{code: codeParse, err: fmt.Errorf("request body: member %q is repeated", name)}
}

// decodeContext reads the value of the context member: null or an object
// whose attribute names are all different.
func decodeContext(dec *json.Decoder) (map[string]any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, decodeError(err)
	}
	switch tok {
	case nil:
		return nil, nil
	case json.Delim('{'):
	default:
		return nil, &requestError{code: codeInvalidContext, err: fmt.Errorf("context: must be a JSON object, got %s", tokenKind(tok))}
	}
	m := make(map[string]any)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, decodeError(err)
		}
		name, _ := tok.(string)
		if _, dup := m[name]; dup {
			return nil, &requestError{code: codeInvalidContext, err: fmt.Errorf("context: attribute %q is repeated", name)}
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, decodeError(err)
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, decodeError(err)
	}
	return m, nil
}

// tokenKind names the JSON type a token starts.
func tokenKind(tok json.Token) string {
	switch tok.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case json.Delim:
		return "array"
	}
	return "null"
}

func decodeError(err error) error {
	if errors.Is(err, io.EOF) {
		// The decoder reports the end of the input in the middle of a
		// value as a plain EOF.
		err = io.ErrUnexpectedEOF
	}
	return &requestError{code: codeParse, err: fmt.Errorf("malformed JSON: %w", err)}
}

// contextFromMap validates the size of a flat context and converts it with
// evaluator.ContextFromMap.
func contextFromMap(m map[string]any, lim limits) (evaluator.Context, error) {
	if len(m) == 0 {
		return evaluator.Context{}, nil
	}
	if len(m) > lim.maxAttrs {
		return evaluator.Context{}, &requestError{code: codeInvalidContext, err: fmt.Errorf("context has %d attributes, more than the limit of %d", len(m), lim.maxAttrs)}
	}
	var bad []string
	for k, v := range m {
		if len(k) > lim.maxAttrBytes {
			bad = append(bad, fmt.Sprintf("context attribute name %.32q... is %d bytes, more than the limit of %d", k, len(k), lim.maxAttrBytes))
			continue
		}
		if n := attrLen(v); n > lim.maxAttrBytes {
			bad = append(bad, fmt.Sprintf("context.%s: value is %d bytes, more than the limit of %d", k, n, lim.maxAttrBytes))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return evaluator.Context{}, &requestError{code: codeInvalidContext, err: errors.New(strings.Join(bad, "; "))}
	}
	ctx, err := evaluator.ContextFromMap(m)
	if err != nil {
		fes := evaluator.FieldErrors(err)
		msgs := make([]string, len(fes))
		for i, fe := range fes {
			msgs[i] = fe.Error()
		}
		return evaluator.Context{}, &requestError{code: codeInvalidContext, err: err, msg: strings.Join(msgs, "; ")}
	}
	return ctx, nil
}

func attrLen(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case json.Number:
		return len(x)
	}
	return 0
}

// appendString appends s as a JSON string. Plain ASCII is copied; anything
// else goes through encoding/json so escaping matches it exactly.
func appendString(b []byte, s string) []byte {
	if stdJSON {
		return appendStringStd(b, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			return appendStringStd(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
