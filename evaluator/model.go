package evaluator

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FlagType is the type of the values a flag serves.
type FlagType string

// Flag types.
const (
	TypeBoolean FlagType = "Boolean"
	TypeString  FlagType = "String"
	TypeNumber  FlagType = "Number"
	TypeObject  FlagType = "Object"
)

// FlagSpec is the declarative definition of a flag. It mirrors the spec of
// the FeatureFlag custom resource field by field so that an adapter can copy
// it 1:1; it is also what the fuzz test unmarshals.
type FlagSpec struct {
	// Type is one of Boolean, String, Number or Object.
	Type FlagType `json:"type"`
	// Enabled is the kill switch: false serves the off value to everybody
	// who is not matched by an override or an allow-list.
	Enabled bool `json:"enabled,omitempty"`
	// Value is the on value. For Boolean flags it must be true or omitted;
	// for every other type it is required.
	Value json.RawMessage `json:"value,omitempty"`
	// OffValue is served when the flag is off. For Boolean flags it must be
	// false or omitted (false is implied). For other types an omitted
	// OffValue means "no value": the caller's default applies.
	OffValue json.RawMessage `json:"offValue,omitempty"`
	// Schema is a JSON Schema (draft 2020-12 unless the schema says
	// otherwise) that every explicit value of the flag must satisfy: value,
	// offValue, rule values, schedule values and override values. External
	// references are not resolved.
	Schema json.RawMessage `json:"schema,omitempty"`
	// AllowedRoles restricts the flag to contexts whose role is listed.
	// Nil or empty means every role (including no role) is allowed.
	AllowedRoles []string `json:"allowedRoles,omitempty"`
	// AllowList serves the on value to the listed users and organisations.
	AllowList *AllowList `json:"allowList,omitempty"`
	// Rules are evaluated in order; the first matching rule decides.
	Rules []Rule `json:"rules,omitempty"`
	// Rollout serves the on value to a stable percentage of principals.
	Rollout *Rollout `json:"rollout,omitempty"`
	// Schedule changes enabled, the rollout percentage and the on value at
	// given instants.
	Schedule []ScheduleStep `json:"schedule,omitempty"`
	// DeviceClasses lists the device classes eligible for overrides: a
	// context with a deviceId or a deviceClass gets device and user
	// overrides of the flag only when its class is listed. Nil or empty
	// means DefaultDeviceClasses.
	DeviceClasses []string `json:"deviceClasses,omitempty"`
}

// DefaultDeviceClasses are the device classes eligible for device overrides
// when a flag does not list its own. Chargers and other classes are not.
var DefaultDeviceClasses = []string{"phone", "tablet", "laptop"}

// AllowList lists users and organisations that always get the on value
// (unless an override or the role gate decides first).
type AllowList struct {
	Users []string `json:"users,omitempty"`
	Orgs  []string `json:"orgs,omitempty"`
}

// Rule serves Value (or the flag's on value when Value is omitted) when all of
// its conditions match. A rule without conditions matches every context.
type Rule struct {
	Name  string          `json:"name"`
	Match []Condition     `json:"match,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// Operator is a condition operator.
type Operator string

// Condition operators.
const (
	// OpIn matches when the attribute equals any of the values. Numeric
	// attributes are compared numerically, booleans against "true"/"false".
	OpIn Operator = "In"
	// OpNotIn matches when the attribute is present and equals none of the values.
	OpNotIn Operator = "NotIn"
	// OpStartsWith matches when the attribute starts with any of the values.
	OpStartsWith Operator = "StartsWith"
	// OpEndsWith matches when the attribute ends with any of the values.
	OpEndsWith Operator = "EndsWith"
	// OpMatches matches when any of the values (RE2 patterns) matches the attribute.
	OpMatches Operator = "Matches"
	// OpExists matches when the attribute is present. It takes no values.
	OpExists Operator = "Exists"
	// OpGreaterThan matches when the attribute, read as a number, is greater
	// than the single value.
	OpGreaterThan Operator = "GreaterThan"
	// OpLessThan matches when the attribute, read as a number, is less than
	// the single value.
	OpLessThan Operator = "LessThan"
	// OpSemVerAtLeast matches when the attribute, parsed as a semantic
	// version, is greater than or equal to the single value.
	OpSemVerAtLeast Operator = "SemVerAtLeast"
)

// Condition tests one context attribute.
type Condition struct {
	// Attribute is targetingKey, userId, orgId, role, deviceId, deviceClass
	// or the name of a free attribute.
	Attribute string   `json:"attribute"`
	Operator  Operator `json:"operator"`
	Values    []string `json:"values,omitempty"`
}

// Rollout serves the on value to Percentage percent of principals.
type Rollout struct {
	// Percentage is 0 to 100.
	Percentage int32 `json:"percentage"`
	// BucketBy names the attribute whose value is hashed. Empty means
	// userId, or orgId when the context has no user.
	BucketBy string `json:"bucketBy,omitempty"`
}

// ScheduleStep changes the flag from At on. Unset fields leave the previous
// setting in place; settings accumulate over steps in time order.
type ScheduleStep struct {
	At                time.Time       `json:"at"`
	Enabled           *bool           `json:"enabled,omitempty"`
	RolloutPercentage *int32          `json:"rolloutPercentage,omitempty"`
	Value             json.RawMessage `json:"value,omitempty"`
}

// SubjectKind says whether an override targets a user or a device.
type SubjectKind string

// Subject kinds.
const (
	SubjectUser   SubjectKind = "user"
	SubjectDevice SubjectKind = "device"
)

// Override pins flag values for one user or device. It mirrors the
// FlagOverride custom resource; Namespace, Name and UID identify the source
// object and the override applies only to flags of its own namespace. Its
// JSON form is the one of the evaluator's sync stream.
type Override struct {
	Kind      SubjectKind `json:"kind"`
	SubjectID string      `json:"subjectId"`
	Namespace string      `json:"namespace"`
	Name      string      `json:"name"`
	UID       string      `json:"uid,omitempty"`
	CreatedAt time.Time   `json:"createdAt"`
	// Enabled false disables the whole override object.
	Enabled bool `json:"enabled"`
	// ExpiresAt, when set, ends the override at exactly that instant.
	ExpiresAt *time.Time      `json:"expiresAt,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Entries   []OverrideEntry `json:"entries,omitempty"`
}

// OverrideEntry overrides one flag. Enabled false serves the flag's off
// value; otherwise a Value is served as is; otherwise (Enabled true or unset,
// no Value) the flag's on value is served. A JSON null Value counts as no
// value.
type OverrideEntry struct {
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value,omitempty"`
	Enabled *bool           `json:"enabled,omitempty"`
}

// Reason is an OpenFeature resolution reason. It is a small integer so that
// Result stays compact; String, MarshalText and UnmarshalText use the
// OpenFeature names (STATIC, TARGETING_MATCH, ...). The zero value is unset.
type Reason uint8

// Resolution reasons.
const (
	ReasonStatic Reason = iota + 1
	ReasonTargetingMatch
	ReasonSplit
	ReasonDisabled
	ReasonDefault
	ReasonError
)

var reasonNames = [...]string{"", "STATIC", "TARGETING_MATCH", "SPLIT", "DISABLED", "DEFAULT", "ERROR"}

// String returns the OpenFeature name, or "" for the zero value.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) {
	if int(r) >= len(reasonNames) {
		return nil, fmt.Errorf("unknown reason %d", int(r))
	}
	return []byte(reasonNames[r]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) error {
	i, err := parseName(reasonNames[:], b, "reason")
	*r = Reason(i)
	return err
}

// ErrorCode is an OpenFeature error code, compact like Reason. The zero
// value ErrorNone means no error.
type ErrorCode uint8

// Error codes.
const (
	ErrorNone ErrorCode = iota
	ErrorFlagNotFound
	ErrorTypeMismatch
	ErrorParse
	ErrorInvalidContext
	ErrorGeneral
)

var errorCodeNames = [...]string{"", "FLAG_NOT_FOUND", "TYPE_MISMATCH", "PARSE_ERROR", "INVALID_CONTEXT", "GENERAL"}

// String returns the OpenFeature name, or "" for ErrorNone.
func (c ErrorCode) String() string {
	if int(c) < len(errorCodeNames) {
		return errorCodeNames[c]
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (c ErrorCode) MarshalText() ([]byte, error) {
	if int(c) >= len(errorCodeNames) {
		return nil, fmt.Errorf("unknown error code %d", int(c))
	}
	return []byte(errorCodeNames[c]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *ErrorCode) UnmarshalText(b []byte) error {
	i, err := parseName(errorCodeNames[:], b, "error code")
	*c = ErrorCode(i)
	return err
}

func parseName(names []string, b []byte, what string) (int, error) {
	for i, n := range names {
		if n == string(b) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", what, b)
}

// Variant names reported in Result.Variant.
const (
	// VariantOn: the flag's on value (spec value or scheduled value).
	VariantOn = "on"
	// VariantOff: the flag's off value (or no value).
	VariantOff = "off"
	// VariantOverride: an override entry's own value.
	VariantOverride = "override"
)

// Source names reported in Result.Source. Rules, overrides and schedule steps
// use the prefixes below followed by the rule name, "<namespace>/<name>" of
// the override object, or the step instant in RFC 3339 (nanosecond
// precision, UTC).
const (
	SourceDefault        = "default"
	SourceKillSwitch     = "kill-switch"
	SourceRoleGate       = "role-gate"
	SourceAllowListUser  = "allow-list:user"
	SourceAllowListOrg   = "allow-list:org"
	SourceRollout        = "rollout"
	SourceRulePrefix     = "rule:"
	SourceUserOverride   = "user-override:"
	SourceDeviceOverride = "device-override:"
	SourceSchedulePrefix = "schedule:"
)

// Result is the outcome of evaluating one flag. It is returned by value and
// evaluation does not allocate it. Value and Raw share memory with the
// store's snapshot and must not be modified.
type Result struct {
	Key string `json:"key"`
	// Value is nil (no value: the caller's default applies), a bool, a
	// string, a float64 or a map[string]any decoded from Raw.
	Value        any    `json:"value"`
	Variant      string `json:"variant,omitempty"`
	Source       string `json:"source,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	// Raw is the compact JSON encoding of Value, nil when there is no value.
	Raw json.RawMessage `json:"-"`
	// Enabled reports whether the flag is on for this context. For Boolean
	// flags it equals Value; for other types it is true when the on path
	// (on value, rule value, override value) was taken.
	Enabled   bool      `json:"enabled"`
	Reason    Reason    `json:"reason"`
	ErrorCode ErrorCode `json:"errorCode,omitempty"`
}

// Hidden reports whether the role gate kept the context out of the flag: bulk evaluation
// leaves such a flag out, and the admin views mark it.
func (r *Result) Hidden() bool {
	return r.Source == SourceRoleGate && r.Reason == ReasonDisabled
}

// SourceKind names the resolution step behind the result, without the rule name, override
// object or step instant of Source: "error", "user-override", "device-override", "rule",
// "schedule", "allow-list", or Source itself ("default", "kill-switch", "role-gate",
// "rollout").
func (r *Result) SourceKind() string {
	src := r.Source
	switch {
	case r.ErrorCode != ErrorNone:
		return "error"
	case strings.HasPrefix(src, SourceUserOverride):
		return "user-override"
	case strings.HasPrefix(src, SourceDeviceOverride):
		return "device-override"
	case strings.HasPrefix(src, SourceRulePrefix):
		return "rule"
	case strings.HasPrefix(src, SourceSchedulePrefix):
		return "schedule"
	case src == SourceAllowListUser || src == SourceAllowListOrg:
		return "allow-list"
	}
	return src
}
