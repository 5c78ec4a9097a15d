package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
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

type wireRequest struct {
	Context map[string]any `json:"context"`
	Flags   []string       `json:"flags"`
}

// decodeRequest decodes {"context":{...},"flags":[...]} and validates the
// context against lim. Errors are *requestError values carrying the error
// code: PARSE_ERROR for malformed JSON or a malformed field other than the
// context, INVALID_CONTEXT for a context that is not an object, has too
// many or too large attributes or attributes of unsupported types.
func decodeRequest(body []byte, lim limits) (request, error) {
	var req request
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	if req, ok := fastDecode(body, lim); ok {
		return req, nil
	}
	return slowRequest(body, lim)
}

// slowRequest is decodeRequest with encoding/json: it accepts every valid
// request and reports every error.
func slowRequest(body []byte, lim limits) (request, error) {
	var req request
	wire, err := slowDecode(body)
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

func slowDecode(body []byte) (wireRequest, error) {
	var wire wireRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&wire); err != nil {
		return wire, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return wire, &requestError{code: codeParse, err: errors.New("unexpected data after the JSON object")}
	}
	return wire, nil
}

func decodeError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		switch {
		case ute.Field == "context" || strings.HasPrefix(ute.Field, "context."):
			return &requestError{code: codeInvalidContext, err: fmt.Errorf("context: must be a JSON object, got %s: %w", ute.Value, err)}
		case ute.Field == "":
			return &requestError{code: codeParse, err: fmt.Errorf("request body must be a JSON object, got %s: %w", ute.Value, err)}
		default:
			return &requestError{code: codeParse, err: fmt.Errorf("%s: %w", ute.Field, err)}
		}
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
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			enc, err := json.Marshal(s)
			if err != nil {
				// Marshalling a string cannot fail; quote defensively.
				return strconv.AppendQuote(b, s)
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// fnv64a hashes with FNV-1a, 64 bit, without allocating.
type fnv64a uint64

const (
	fnvOffset fnv64a = 14695981039346656037
	fnvPrime  fnv64a = 1099511628211
)

func (h fnv64a) bytes(b []byte) fnv64a {
	for _, c := range b {
		h ^= fnv64a(c)
		h *= fnvPrime
	}
	return h
}

func (h fnv64a) str(s string) fnv64a {
	for i := 0; i < len(s); i++ {
		h ^= fnv64a(s[i])
		h *= fnvPrime
	}
	// Terminate each field so that ("ab","c") and ("a","bc") differ.
	h ^= 0xff
	h *= fnvPrime
	return h
}

// hashContext hashes a context canonically: well-known fields in a fixed
// order, then free attributes sorted by name with a type tag.
func hashContext(h fnv64a, c *evaluator.Context) fnv64a {
	h = h.str(c.TargetingKey).str(c.UserID).str(c.OrgID).str(c.Role).str(c.DeviceID).str(c.DeviceClass)
	if len(c.Attributes) == 0 {
		return h
	}
	keys := make([]string, 0, len(c.Attributes))
	for k := range c.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h = h.str(k)
		switch v := c.Attributes[k].(type) {
		case string:
			h = h.str("s").str(v)
		case json.Number:
			h = h.str("n").str(string(v))
		case bool:
			h = h.str("b").str(strconv.FormatBool(v))
		case nil:
			h = h.str("z")
		default:
			h = h.str("o").str(fmt.Sprint(v))
		}
	}
	return h
}
