package evaluator

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Context is the evaluation context. Well-known fields are plain strings
// (empty means absent); free attributes may be strings, bools or numbers
// (any Go integer or float type, or json.Number). A nil attribute counts as
// absent. Conditions naming a well-known attribute read only the field, never
// Attributes; use ContextFromMap to split a flat map.
type Context struct {
	TargetingKey string         `json:"targetingKey,omitempty"`
	UserID       string         `json:"userId,omitempty"`
	OrgID        string         `json:"orgId,omitempty"`
	Role         string         `json:"role,omitempty"`
	DeviceID     string         `json:"deviceId,omitempty"`
	DeviceClass  string         `json:"deviceClass,omitempty"`
	Attributes   map[string]any `json:"attributes,omitempty"`
}

// Well-known attribute names.
const (
	AttrTargetingKey = "targetingKey"
	AttrUserID       = "userId"
	AttrOrgID        = "orgId"
	AttrRole         = "role"
	AttrDeviceID     = "deviceId"
	AttrDeviceClass  = "deviceClass"
)

// RoleGuest is the role of a context that names none: a guest, not signed in (seed 004's
// roles are guest, user and admin). Role gating treats an empty Role as RoleGuest, so that
// allowedRoles can let guests in.
const RoleGuest = "guest"

// GateRole returns the role that role gating uses: Role, or RoleGuest when it is empty.
func (c *Context) GateRole() string {
	if c.Role == "" {
		return RoleGuest
	}
	return c.Role
}

// EffectiveUserID returns UserID, or TargetingKey when UserID is empty.
func (c *Context) EffectiveUserID() string {
	if c.UserID != "" {
		return c.UserID
	}
	return c.TargetingKey
}

// ContextFromMap builds a Context from a flat attribute map such as an
// OpenFeature evaluation context: well-known keys must be strings and go to
// their fields, every other key becomes a free attribute and must be a
// string, bool, number or nil. Errors are *FieldError values joined together.
func ContextFromMap(m map[string]any) (Context, error) {
	var c Context
	var errs fieldErrs
	for k, v := range m {
		var dst *string
		switch k {
		case AttrTargetingKey:
			dst = &c.TargetingKey
		case AttrUserID:
			dst = &c.UserID
		case AttrOrgID:
			dst = &c.OrgID
		case AttrRole:
			dst = &c.Role
		case AttrDeviceID:
			dst = &c.DeviceID
		case AttrDeviceClass:
			dst = &c.DeviceClass
		}
		if dst != nil {
			switch s := v.(type) {
			case string:
				*dst = s
			case nil:
			default:
				errs.add("context."+k, "must be a string, got %T", v)
			}
			continue
		}
		if classify(v).kind == valInvalid {
			errs.add("context."+k, "unsupported attribute type %T (want string, bool or number)", v)
			continue
		}
		if c.Attributes == nil {
			c.Attributes = make(map[string]any, len(m))
		}
		c.Attributes[k] = v
	}
	if len(errs) > 0 {
		return Context{}, joinSorted(errs)
	}
	return c, nil
}

type attrKind uint8

const (
	attrFree attrKind = iota
	attrTargetingKey
	attrUserID
	attrOrgID
	attrRole
	attrDeviceID
	attrDeviceClass
)

// attrRef is a pre-resolved attribute name.
type attrRef struct {
	kind attrKind
	name string
}

func parseAttr(name string) attrRef {
	r := attrRef{name: name}
	switch name {
	case AttrTargetingKey:
		r.kind = attrTargetingKey
	case AttrUserID:
		r.kind = attrUserID
	case AttrOrgID:
		r.kind = attrOrgID
	case AttrRole:
		r.kind = attrRole
	case AttrDeviceID:
		r.kind = attrDeviceID
	case AttrDeviceClass:
		r.kind = attrDeviceClass
	}
	return r
}

type valKind uint8

const (
	valMissing valKind = iota
	valString
	valNumber
	valBool
	valInvalid
)

// attrVal is an attribute read from a context without allocating, small
// enough to be returned in registers: strings in s; numbers in n, with their
// exact decimal text in s when a float64 cannot carry it (json.Number,
// integers beyond 2^53); booleans in n as 1 or 0.
type attrVal struct {
	s    string
	n    float64
	kind valKind
}

func strVal(s string) attrVal {
	if s == "" {
		return attrVal{}
	}
	return attrVal{kind: valString, s: s}
}

func (c *Context) lookup(a attrRef) attrVal {
	switch a.kind {
	case attrTargetingKey:
		return strVal(c.TargetingKey)
	case attrUserID:
		return strVal(c.EffectiveUserID())
	case attrOrgID:
		return strVal(c.OrgID)
	case attrRole:
		return strVal(c.Role)
	case attrDeviceID:
		return strVal(c.DeviceID)
	case attrDeviceClass:
		return strVal(c.DeviceClass)
	}
	v, ok := c.Attributes[a.name]
	if !ok {
		return attrVal{}
	}
	return classify(v)
}

func classify(v any) attrVal {
	switch x := v.(type) {
	case nil:
		return attrVal{}
	case string:
		return attrVal{kind: valString, s: x}
	case bool:
		if x {
			return attrVal{kind: valBool, n: 1}
		}
		return attrVal{kind: valBool}
	case float64:
		return num(x)
	case float32:
		return num(float64(x))
	case int:
		return intNum(int64(x))
	case int8:
		return intNum(int64(x))
	case int16:
		return intNum(int64(x))
	case int32:
		return intNum(int64(x))
	case int64:
		return intNum(x)
	case uint:
		return uintNum(uint64(x))
	case uint8:
		return intNum(int64(x))
	case uint16:
		return intNum(int64(x))
	case uint32:
		return intNum(int64(x))
	case uint64:
		return uintNum(x)
	case json.Number:
		n, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return attrVal{kind: valInvalid}
		}
		return attrVal{kind: valNumber, n: n, s: string(x)}
	}
	return attrVal{kind: valInvalid}
}

func num(f float64) attrVal {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return attrVal{kind: valInvalid}
	}
	return attrVal{kind: valNumber, n: f}
}

// maxExact is the largest magnitude up to which every integer is exact in a
// float64.
const maxExact = 1 << 53

func intNum(i int64) attrVal {
	v := attrVal{kind: valNumber, n: float64(i)}
	if i > maxExact || i < -maxExact {
		v.s = strconv.FormatInt(i, 10)
	}
	return v
}

func uintNum(u uint64) attrVal {
	v := attrVal{kind: valNumber, n: float64(u)}
	if u > maxExact {
		v.s = strconv.FormatUint(u, 10)
	}
	return v
}

// appendText appends the textual form of a present attribute: strings as
// is, booleans as true/false, numbers in their exact text when known,
// integral values in decimal, other floats in the shortest fixed notation.
func (v attrVal) appendText(b []byte) []byte {
	switch v.kind {
	case valString:
		return append(b, v.s...)
	case valBool:
		return strconv.AppendBool(b, v.n != 0)
	case valNumber:
		switch {
		case v.s != "":
			return append(b, v.s...)
		case v.n == math.Trunc(v.n) && math.Abs(v.n) <= maxExact:
			return strconv.AppendInt(b, int64(v.n), 10)
		default:
			return strconv.AppendFloat(b, v.n, 'f', -1, 64)
		}
	}
	return b
}

// text returns the textual form; it only allocates for non-strings.
func (v attrVal) text() string {
	if v.kind == valString {
		return v.s
	}
	var buf [32]byte
	return string(v.appendText(buf[:0]))
}

// describe renders an attribute for messages; raw is the value as found in
// the context, used to name an unsupported type.
func (v attrVal) describe(raw any) string {
	switch v.kind {
	case valMissing:
		return "absent"
	case valInvalid:
		return fmt.Sprintf("unsupported type %T", raw)
	case valString:
		return strconv.Quote(v.s)
	}
	return v.text()
}
