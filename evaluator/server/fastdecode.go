package server

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/flagops/flagops/evaluator"
)

// fastDecode decodes and validates the common shape of a request without
// reflection and without an intermediate map:
// {"context":{<name>:<string|number|true|false|null>,...},"flags":[<string>,...]}
// (flags only for a native body) with member names and strings free of
// escapes, within the limits, with well-known attributes as strings or null.
// It returns ok false for anything else (other members, repeated members or
// attributes, escapes, nested values, malformed JSON, any invalid or
// oversized attribute), and the caller falls back to slowRequest, which then
// produces the error. When ok, the result equals what slowRequest returns;
// FuzzDecodeRequest checks this.
func fastDecode(b []byte, lim limits, kind bodyKind) (req request, ok bool) {
	p := fastParser{b: b, lim: lim}
	if !p.consume('{') {
		return req, false
	}
	var seenCtx, seenFlags bool
	if p.consume('}') {
		return req, p.end()
	}
	for {
		name, ok := p.str()
		if !ok || !p.consume(':') {
			return req, false
		}
		switch {
		case name == memberContext && !seenCtx:
			seenCtx = true
			if req.ctx, ok = p.context(); !ok {
				return req, false
			}
		case name == memberFlags && !seenFlags && kind == nativeBody:
			seenFlags = true
			if req.flags, ok = p.flags(); !ok {
				return req, false
			}
		default:
			return req, false
		}
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return req, p.end()
		}
		return req, false
	}
}

type fastParser struct {
	b   []byte
	i   int
	lim limits
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if it is next.
func (p *fastParser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// str reads a string without escapes, control characters or invalid UTF-8.
func (p *fastParser) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		switch {
		case c == '"':
			raw := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			return intern(raw), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// intern returns the well-known attribute names without allocating.
func intern(b []byte) string {
	switch string(b) {
	case "targetingKey":
		return "targetingKey"
	case "userId":
		return "userId"
	case "orgId":
		return "orgId"
	case "role":
		return "role"
	case "deviceId":
		return "deviceId"
	case "deviceClass":
		return "deviceClass"
	}
	return string(b)
}

func (p *fastParser) context() (evaluator.Context, bool) {
	var c evaluator.Context
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == 'n' {
		return c, p.literal("null")
	}
	if !p.consume('{') {
		return c, false
	}
	if p.consume('}') {
		return c, true
	}
	// seen has one bit per well-known attribute, so that a repeated one is
	// found without a map.
	var seen uint8
	for n := 1; ; n++ {
		if n > p.lim.maxAttrs {
			return c, false
		}
		name, ok := p.str()
		if !ok || len(name) > p.lim.maxAttrBytes || !p.consume(':') {
			return c, false
		}
		v, ok := p.scalar()
		if !ok || attrLen(v) > p.lim.maxAttrBytes {
			return c, false
		}
		var dst *string
		var bit uint8
		switch name {
		case evaluator.AttrTargetingKey:
			dst, bit = &c.TargetingKey, 1<<0
		case evaluator.AttrUserID:
			dst, bit = &c.UserID, 1<<1
		case evaluator.AttrOrgID:
			dst, bit = &c.OrgID, 1<<2
		case evaluator.AttrRole:
			dst, bit = &c.Role, 1<<3
		case evaluator.AttrDeviceID:
			dst, bit = &c.DeviceID, 1<<4
		case evaluator.AttrDeviceClass:
			dst, bit = &c.DeviceClass, 1<<5
		}
		if dst != nil {
			if seen&bit != 0 {
				return c, false
			}
			seen |= bit
			switch s := v.(type) {
			case string:
				*dst = s
			case nil:
				*dst = ""
			default:
				return c, false
			}
		} else {
			if num, isNum := v.(json.Number); isNum {
				if _, err := strconv.ParseFloat(string(num), 64); err != nil {
					return c, false
				}
			}
			if c.Attributes == nil {
				c.Attributes = make(map[string]any)
			} else if _, dup := c.Attributes[name]; dup {
				return c, false
			}
			c.Attributes[name] = v
		}
		if p.consume(',') {
			continue
		}
		return c, p.consume('}')
	}
}

func (p *fastParser) flags() ([]string, bool) {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == 'n' {
		return nil, p.literal("null")
	}
	if !p.consume('[') {
		return nil, false
	}
	out := []string{}
	if p.consume(']') {
		return out, true
	}
	for {
		s, ok := p.str()
		if !ok || s == "" {
			return nil, false
		}
		out = append(out, s)
		if p.consume(',') {
			continue
		}
		return out, p.consume(']')
	}
}

func (p *fastParser) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

func (p *fastParser) scalar() (any, bool) {
	p.ws()
	if p.i >= len(p.b) {
		return nil, false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, false
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() (any, bool) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, false
		}
	}
	return json.Number(p.b[start:p.i]), true
}

func (p *fastParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}
