package evaluator

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Flag is the compiled, immutable form of a FlagSpec. Everything evaluation
// needs (values, schema, regular expressions, numbers, versions, source
// strings) is parsed once by Compile. A *Flag is safe for concurrent use.
type Flag struct {
	key    string
	typ    FlagType
	spec   FlagSpec // as given, for Namespace.FlagSpec
	off    value
	schema *jsonschema.Schema
	// validation identifies what override values are checked against
	// (type and schema); overrides are re-validated when it changes.
	validation string

	roles      []string // nil: every role
	devClasses []string
	allowUsers map[string]struct{}
	allowOrgs  map[string]struct{}
	rules      []rule
	bucketBy   attrRef
	hasBucket  bool

	base  state  // settings before any schedule step
	steps []step // sorted by at, each holding the accumulated settings
}

// state holds the settings that schedule steps can change and where each
// came from.
// Each *Step field is the index in Flag.steps of the step that last set the
// setting, or -1 when it comes from the spec.
type state struct {
	enabled     bool
	enabledStep int
	rollout     bool
	pct         int32
	pctStep     int
	on          value
	valueStep   int
}

type step struct {
	at     time.Time
	source string
	st     state
}

type rule struct {
	name   string
	source string
	conds  []cond
	val    value // not present: serve the on value
}

type cond struct {
	attr   attrRef
	op     Operator
	values []string
	nums   []float64 // In/NotIn: numeric form of values, NaN when not numeric
	res    []*regexp.Regexp
	num    float64
	ver    *semver.Version
}

// Key returns the flag key.
func (f *Flag) Key() string { return f.key }

// Type returns the flag type.
func (f *Flag) Type() FlagType { return f.typ }

// ScheduleInstants returns the instants of the flag's schedule steps in time
// order.
func (f *Flag) ScheduleInstants() []time.Time {
	out := make([]time.Time, len(f.steps))
	for i := range f.steps {
		out[i] = f.steps[i].at
	}
	return out
}

// CheckValue reports whether raw is a value this flag may serve: it must
// have the flag's type and satisfy its schema. Override values are checked
// with it.
func (f *Flag) CheckValue(raw []byte) error {
	_, err := f.checkValue(raw)
	return err
}

func (f *Flag) checkValue(raw []byte) (value, error) {
	v, err := parseTyped(f.typ, raw)
	if err != nil {
		return value{}, err
	}
	if err := validateSchema(f.schema, v.raw); err != nil {
		return value{}, fmt.Errorf("does not match schema: %w", err)
	}
	return v, nil
}

// stateAt returns the settings in effect at now: the accumulated state of
// the latest step at or before now.
func (f *Flag) stateAt(now time.Time) *state {
	lo, hi := 0, len(f.steps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !f.steps[m].at.After(now) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return &f.base
	}
	return &f.steps[lo-1].st
}

// scheduleSource formats the source of a schedule step.
func scheduleSource(at time.Time) string {
	return SourceSchedulePrefix + at.UTC().Format(time.RFC3339Nano)
}

type fieldErrs []error

func (e *fieldErrs) add(field, format string, args ...any) {
	*e = append(*e, &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (e *fieldErrs) wrap(field, detail string, err error) {
	*e = append(*e, &FieldError{Field: field, Detail: detail + ": " + err.Error(), Err: err})
}

// Compile validates spec and builds its evaluation form. All problems are
// reported, each as a *FieldError naming the field, joined with errors.Join.
func Compile(key string, spec FlagSpec) (*Flag, error) {
	var errs fieldErrs
	f := &Flag{key: key, typ: spec.Type, spec: spec}
	f.base.enabledStep, f.base.pctStep, f.base.valueStep = -1, -1, -1
	if key == "" {
		errs.add("key", "must not be empty")
	}
	typeOK := true
	switch spec.Type {
	case TypeBoolean, TypeString, TypeNumber, TypeObject:
	default:
		typeOK = false
		errs.add("spec.type", "unsupported flag type %q (want Boolean, String, Number or Object)", spec.Type)
	}

	var schemaDoc []byte
	if !isAbsent(spec.Schema) {
		sch, doc, err := compileSchema(spec.Schema)
		if err != nil {
			errs = append(errs, &FieldError{Field: "spec.schema", Detail: err.Error(), Err: err})
		} else {
			f.schema, schemaDoc = sch, doc
		}
	}
	f.validation = string(spec.Type) + "\x00" + string(schemaDoc)

	// checked parses an explicit value and checks it against type and schema.
	checked := func(field string, raw []byte) (value, bool) {
		if !typeOK {
			return value{}, false
		}
		v, err := parseTyped(f.typ, raw)
		if err != nil {
			errs.wrap(field, "invalid value", err)
			return value{}, false
		}
		if err := validateSchema(f.schema, v.raw); err != nil {
			errs.wrap(field, "does not match schema", err)
			return value{}, false
		}
		return v, true
	}

	// On value.
	switch {
	case spec.Type == TypeBoolean && isAbsent(spec.Value):
		f.base.on = boolValue(true)
	case spec.Type == TypeBoolean:
		if v, ok := checked("spec.value", spec.Value); ok {
			if !v.b {
				errs.add("spec.value", "boolean flag value must be true or omitted")
			}
			f.base.on = v
		}
	case isAbsent(spec.Value):
		if typeOK {
			errs.add("spec.value", "required for %s flags", spec.Type)
		}
	default:
		f.base.on, _ = checked("spec.value", spec.Value)
	}

	// Off value.
	switch {
	case spec.Type == TypeBoolean && isAbsent(spec.OffValue):
		f.off = boolValue(false)
	case spec.Type == TypeBoolean:
		if v, ok := checked("spec.offValue", spec.OffValue); ok {
			if v.b {
				errs.add("spec.offValue", "boolean flag off value must be false or omitted")
			}
			f.off = v
		}
	case !isAbsent(spec.OffValue):
		f.off, _ = checked("spec.offValue", spec.OffValue)
	}

	f.base.enabled = spec.Enabled
	if len(spec.AllowedRoles) > 0 {
		f.roles = slices.Clone(spec.AllowedRoles)
	}
	f.devClasses = DefaultDeviceClasses
	if len(spec.DeviceClasses) > 0 {
		f.devClasses = slices.Clone(spec.DeviceClasses)
	}
	if spec.AllowList != nil {
		f.allowUsers = toSet(spec.AllowList.Users)
		f.allowOrgs = toSet(spec.AllowList.Orgs)
	}

	// Rules.
	names := make(map[string]int, len(spec.Rules))
	for i, r := range spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", i)
		cr := rule{name: r.Name, source: SourceRulePrefix + r.Name}
		if r.Name == "" {
			errs.add(field+".name", "must not be empty")
		} else if j, dup := names[r.Name]; dup {
			errs.add(field+".name", "duplicate rule name %q (also spec.rules[%d])", r.Name, j)
		} else {
			names[r.Name] = i
		}
		for j, c := range r.Match {
			cc, ok := compileCond(&errs, fmt.Sprintf("%s.match[%d]", field, j), c)
			if ok {
				cr.conds = append(cr.conds, cc)
			}
		}
		if !isAbsent(r.Value) {
			cr.val, _ = checked(field+".value", r.Value)
		}
		f.rules = append(f.rules, cr)
	}

	// Rollout.
	if spec.Rollout != nil {
		f.base.rollout = true
		f.base.pct = spec.Rollout.Percentage
		if p := spec.Rollout.Percentage; p < 0 || p > 100 {
			errs.add("spec.rollout.percentage", "must be between 0 and 100, got %d", p)
		}
		if spec.Rollout.BucketBy != "" {
			f.bucketBy, f.hasBucket = parseAttr(spec.Rollout.BucketBy), true
		}
	}

	// Schedule.
	type idxStep struct {
		i int
		s ScheduleStep
	}
	sorted := make([]idxStep, len(spec.Schedule))
	for i, s := range spec.Schedule {
		sorted[i] = idxStep{i, s}
	}
	slices.SortStableFunc(sorted, func(a, b idxStep) int { return a.s.At.Compare(b.s.At) })
	cur := f.base
	for _, is := range sorted {
		s, field := is.s, fmt.Sprintf("spec.schedule[%d]", is.i)
		if s.At.IsZero() {
			errs.add(field+".at", "must be set")
		}
		if s.Enabled == nil && s.RolloutPercentage == nil && isAbsent(s.Value) {
			errs.add(field, "must set at least one of enabled, rolloutPercentage, value")
		}
		src, idx := scheduleSource(s.At), len(f.steps)
		if s.Enabled != nil {
			cur.enabled, cur.enabledStep = *s.Enabled, idx
		}
		if s.RolloutPercentage != nil {
			p := *s.RolloutPercentage
			if p < 0 || p > 100 {
				errs.add(field+".rolloutPercentage", "must be between 0 and 100, got %d", p)
			}
			cur.rollout, cur.pct, cur.pctStep = true, p, idx
		}
		if !isAbsent(s.Value) {
			if v, ok := checked(field+".value", s.Value); ok {
				if spec.Type == TypeBoolean && !v.b {
					errs.add(field+".value", "boolean flag value must be true or omitted")
				}
				cur.on, cur.valueStep = v, idx
			}
		}
		f.steps = append(f.steps, step{at: s.At, source: src, st: cur})
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func boolValue(b bool) value {
	if b {
		return value{raw: []byte("true"), v: true, b: true}
	}
	return value{raw: []byte("false"), v: false}
}

func toSet(xs []string) map[string]struct{} {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		if x != "" {
			m[x] = struct{}{}
		}
	}
	return m
}

func compileCond(errs *fieldErrs, field string, c Condition) (cond, bool) {
	n := len(*errs)
	cc := cond{op: c.Operator, values: slices.Clone(c.Values)}
	if c.Attribute == "" {
		errs.add(field+".attribute", "must not be empty")
	}
	cc.attr = parseAttr(c.Attribute)
	switch c.Operator {
	case OpIn, OpNotIn, OpStartsWith, OpEndsWith, OpMatches:
		if len(c.Values) == 0 {
			errs.add(field+".values", "operator %s needs at least one value", c.Operator)
		}
	case OpExists:
		if len(c.Values) != 0 {
			errs.add(field+".values", "operator Exists takes no values")
		}
	case OpGreaterThan, OpLessThan, OpSemVerAtLeast:
		if len(c.Values) != 1 {
			errs.add(field+".values", "operator %s needs exactly one value, got %d", c.Operator, len(c.Values))
		}
	default:
		errs.add(field+".operator", "unknown operator %q", c.Operator)
	}
	for k, v := range c.Values {
		vf := fmt.Sprintf("%s.values[%d]", field, k)
		switch c.Operator {
		case OpIn, OpNotIn:
			n, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsInf(n, 0) {
				n = math.NaN()
			}
			cc.nums = append(cc.nums, n)
		case OpMatches:
			re, err := regexp.Compile(v)
			if err != nil {
				errs.wrap(vf, fmt.Sprintf("invalid RE2 pattern %q", v), err)
				continue
			}
			cc.res = append(cc.res, re)
		case OpGreaterThan, OpLessThan:
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				errs.wrap(vf, fmt.Sprintf("invalid number %q", v), err)
				continue
			}
			if math.IsNaN(n) || math.IsInf(n, 0) {
				errs.add(vf, "invalid number %q: must be finite", v)
				continue
			}
			cc.num = n
		case OpSemVerAtLeast:
			ver, err := semver.NewVersion(v)
			if err != nil {
				errs.wrap(vf, fmt.Sprintf("invalid semantic version %q", v), err)
				continue
			}
			cc.ver = ver
		}
	}
	return cc, len(*errs) == n
}
