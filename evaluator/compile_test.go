package evaluator

import (
	"errors"
	"reflect"
	"regexp/syntax"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestCompileErrors(t *testing.T) {
	cond := func(op Operator, values ...string) FlagSpec {
		return FlagSpec{Type: TypeBoolean, Rules: []Rule{
			{Name: "ok"},
			{Name: "r", Match: []Condition{{Attribute: "a", Operator: op, Values: values}}},
		}}
	}
	tests := []struct {
		name string
		key  string
		spec FlagSpec
		// want lists "field: detail prefix" for every expected error, in order.
		want []string
	}{
		{name: "empty key", key: "", spec: boolFlag(true), want: []string{"key: must not be empty"}},
		{name: "unknown type", spec: FlagSpec{Type: "Integer"}, want: []string{`spec.type: unsupported flag type "Integer"`}},
		{name: "boolean value false", spec: FlagSpec{Type: TypeBoolean, Value: raw(`false`)}, want: []string{"spec.value: boolean flag value must be true or omitted"}},
		{name: "boolean value string", spec: FlagSpec{Type: TypeBoolean, Value: raw(`"true"`)}, want: []string{"spec.value: invalid value: boolean flag needs a json boolean, got string"}},
		{name: "boolean off value true", spec: FlagSpec{Type: TypeBoolean, OffValue: raw(`true`)}, want: []string{"spec.offValue: boolean flag off value must be false or omitted"}},
		{name: "string value missing", spec: FlagSpec{Type: TypeString}, want: []string{"spec.value: required for String flags"}},
		{name: "null value counts as missing", spec: FlagSpec{Type: TypeNumber, Value: raw(` null `)}, want: []string{"spec.value: required for Number flags"}},
		{name: "number value string", spec: FlagSpec{Type: TypeNumber, Value: raw(`"1"`)}, want: []string{"spec.value: invalid value: number flag needs a json number, got string"}},
		{name: "number out of range", spec: FlagSpec{Type: TypeNumber, Value: raw(`1e999`)}, want: []string{"spec.value: invalid value: invalid number"}},
		{name: "object value array", spec: FlagSpec{Type: TypeObject, Value: raw(`[1]`)}, want: []string{"spec.value: invalid value: object flag needs a json object, got array"}},
		{name: "string value object", spec: FlagSpec{Type: TypeString, Value: raw(`{}`)}, want: []string{"spec.value: invalid value: string flag needs a json string, got object"}},
		{name: "invalid json", spec: FlagSpec{Type: TypeString, Value: raw(`"a" "b"`)}, want: []string{"spec.value: invalid value: invalid json"}},
		{name: "off value wrong type", spec: FlagSpec{Type: TypeString, Value: raw(`"a"`), OffValue: raw(`1`)}, want: []string{"spec.offValue: invalid value: string flag needs a json string, got number"}},
		{name: "off value fails schema", spec: FlagSpec{Type: TypeString, Value: raw(`"a"`), OffValue: raw(`"bb"`), Schema: raw(`{"maxLength":1}`)},
			want: []string{"spec.offValue: does not match schema: "}},
		{name: "value fails schema", spec: FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`{"type":"number","maximum":5}`)},
			want: []string{"spec.value: does not match schema: maximum: got 7, want 5"}},
		{name: "invalid schema", spec: FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`{"type":"nope"}`)}, want: []string{"spec.schema: invalid schema: "}},
		{name: "schema not an object", spec: FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`[]`)}, want: []string{"spec.schema: schema must be a json object or boolean, got array"}},
		{name: "schema invalid json", spec: FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`{`)}, want: []string{"spec.schema: invalid json"}},
		{name: "schema external ref", spec: FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`{"$ref":"file:///etc/passwd"}`)}, want: []string{"spec.schema: invalid schema: "}},
		{name: "rule value fails schema", spec: FlagSpec{Type: TypeString, Value: raw(`"a"`), Schema: raw(`{"enum":["a"]}`),
			Rules: []Rule{{Name: "x", Value: raw(`"b"`)}}}, want: []string{"spec.rules[0].value: does not match schema: "}},
		{name: "rule value wrong type", spec: FlagSpec{Type: TypeBoolean, Rules: []Rule{{Name: "x", Value: raw(`1`)}}},
			want: []string{"spec.rules[0].value: invalid value: boolean flag needs a json boolean, got number"}},
		{name: "rule name missing and duplicate", spec: FlagSpec{Type: TypeBoolean, Rules: []Rule{{Name: "a"}, {}, {Name: "a"}}},
			want: []string{"spec.rules[1].name: must not be empty", `spec.rules[2].name: duplicate rule name "a" (also spec.rules[0])`}},
		{name: "bad regex", spec: cond(OpMatches, "ok", "("), want: []string{`spec.rules[1].match[0].values[1]: invalid RE2 pattern "(": error parsing regexp: missing closing )`}},
		{name: "bad number", spec: cond(OpGreaterThan, "ten"), want: []string{`spec.rules[1].match[0].values[0]: invalid number "ten": strconv.ParseFloat`}},
		{name: "non-finite number", spec: cond(OpLessThan, "NaN"), want: []string{`spec.rules[1].match[0].values[0]: invalid number "NaN": must be finite`}},
		{name: "bad semver", spec: cond(OpSemVerAtLeast, "one"), want: []string{`spec.rules[1].match[0].values[0]: invalid semantic version "one": `}},
		{name: "unknown operator", spec: cond("Contains", "x"), want: []string{`spec.rules[1].match[0].operator: unknown operator "Contains"`}},
		{name: "In without values", spec: cond(OpIn), want: []string{"spec.rules[1].match[0].values: operator In needs at least one value"}},
		{name: "Exists with values", spec: cond(OpExists, "x"), want: []string{"spec.rules[1].match[0].values: operator Exists takes no values"}},
		{name: "GreaterThan with two values", spec: cond(OpGreaterThan, "1", "2"), want: []string{"spec.rules[1].match[0].values: operator GreaterThan needs exactly one value, got 2"}},
		{name: "empty attribute", spec: FlagSpec{Type: TypeBoolean, Rules: []Rule{{Name: "r", Match: []Condition{{Operator: OpExists}}}}},
			want: []string{"spec.rules[0].match[0].attribute: must not be empty"}},
		{name: "rollout out of range", spec: FlagSpec{Type: TypeBoolean, Rollout: &Rollout{Percentage: 101}}, want: []string{"spec.rollout.percentage: must be between 0 and 100, got 101"}},
		{name: "negative rollout", spec: FlagSpec{Type: TypeBoolean, Rollout: &Rollout{Percentage: -1}}, want: []string{"spec.rollout.percentage: must be between 0 and 100, got -1"}},
		{name: "schedule problems", spec: FlagSpec{Type: TypeString, Value: raw(`"a"`), Schema: raw(`{"maxLength":1}`), Schedule: []ScheduleStep{
			{At: t0, Value: raw(`"long"`)},
			{},
			{At: t0, RolloutPercentage: ptr(int32(200))},
		}}, want: []string{
			"spec.schedule[1].at: must be set",
			"spec.schedule[1]: must set at least one of enabled, rolloutPercentage, value",
			"spec.schedule[0].value: does not match schema: ",
			"spec.schedule[2].rolloutPercentage: must be between 0 and 100, got 200",
		}},
		{name: "boolean schedule value false", spec: FlagSpec{Type: TypeBoolean, Schedule: []ScheduleStep{{At: t0, Value: raw(`false`)}}},
			want: []string{"spec.schedule[0].value: boolean flag value must be true or omitted"}},
		{name: "several errors are all reported", spec: FlagSpec{Type: TypeNumber, Value: raw(`"x"`), Rollout: &Rollout{Percentage: 300}},
			want: []string{"spec.value: invalid value: ", "spec.rollout.percentage: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" && tc.name != "empty key" {
				key = "f"
			}
			f, err := Compile(key, tc.spec)
			if err == nil || f != nil {
				t.Fatalf("Compile succeeded: %v", f)
			}
			fes := FieldErrors(err)
			if len(fes) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(fes), len(tc.want), err)
			}
			for i, w := range tc.want {
				if got := fes[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("error %d = %q, want prefix %q", i, got, w)
				}
				if fes[i].Detail == "" || strings.ToLower(fes[i].Detail[:1]) != fes[i].Detail[:1] {
					t.Errorf("detail must be lower case: %q", fes[i].Detail)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe != fes[0] {
				t.Fatalf("errors.As did not find the first field error")
			}
		})
	}
}

func TestCompileErrorUnwrapsCause(t *testing.T) {
	_, err := Compile("f", FlagSpec{Type: TypeBoolean, Rules: []Rule{{Name: "r", Match: []Condition{{Attribute: "a", Operator: OpMatches, Values: []string{"("}}}}}})
	var se *syntax.Error
	if !errors.As(err, &se) || se.Code != syntax.ErrMissingParen {
		t.Fatalf("want the regexp syntax error in the chain, got %v", err)
	}
}

func TestCompileValid(t *testing.T) {
	spec := FlagSpec{
		Type:     TypeObject,
		Enabled:  true,
		Value:    raw(`{"limit": 10}`),
		OffValue: raw(`{"limit": 0}`),
		Schema:   raw(`{"type":"object","properties":{"limit":{"type":"integer","minimum":0}},"required":["limit"],"$defs":{"x":{"type":"string"}}}`),
		Rules: []Rule{{Name: "vip", Value: raw(`{"limit":100}`), Match: []Condition{
			{Attribute: "appVersion", Operator: OpSemVerAtLeast, Values: []string{"1.2.3"}},
			{Attribute: "email", Operator: OpMatches, Values: []string{`@vip\.`}},
		}}},
		Schedule: []ScheduleStep{
			{At: t0.Add(2 * time.Hour), Value: raw(`{"limit":20}`)},
			{At: t0.Add(time.Hour), Enabled: ptr(false)},
		},
		AllowedRoles:  []string{},
		DeviceClasses: []string{},
	}
	f, err := Compile("limits", spec)
	if err != nil {
		t.Fatal(err)
	}
	if f.Key() != "limits" || f.Type() != TypeObject {
		t.Fatalf("key/type = %q/%q", f.Key(), f.Type())
	}
	if got := f.ScheduleInstants(); !reflect.DeepEqual(got, []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)}) {
		t.Fatalf("schedule not sorted: %v", got)
	}
	if f.roles != nil {
		t.Fatal("empty allowedRoles must mean every role")
	}
	if !reflect.DeepEqual(f.devClasses, DefaultDeviceClasses) {
		t.Fatalf("empty deviceClasses must mean the defaults, got %v", f.devClasses)
	}
	valueTests := []struct {
		raw string
		ok  bool
	}{
		{`{"limit": 5}`, true}, {`{"limit": -1}`, false}, {`{}`, false}, {`5`, false}, {`{"limit": 1.5}`, false},
	}
	for _, tc := range valueTests {
		if err := f.CheckValue([]byte(tc.raw)); (err == nil) != tc.ok {
			t.Errorf("CheckValue(%s) = %v, want ok=%v", tc.raw, err, tc.ok)
		}
	}
}

func TestFieldErrorsFollowsWrapping(t *testing.T) {
	a := &FieldError{Field: "a", Detail: "x"}
	b := &FieldError{Field: "b", Detail: "y"}
	err := errors.Join(errors.New("plain"), wrapErr{errors.Join(a, b)})
	got := FieldErrors(err)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("got %v", got)
	}
	if FieldErrors(nil) != nil {
		t.Fatal("nil error has no field errors")
	}
}

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }

func TestSchemaErrorsKeepTheirCause(t *testing.T) {
	_, err := Compile("f", FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`{"maximum":5}`)})
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("validation error not in the chain: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("message spans lines: %q", err)
	}
	_, err = Compile("f", FlagSpec{Type: TypeNumber, Value: raw(`7`), Schema: raw(`{"type":"nope"}`)})
	var se *jsonschema.SchemaValidationError
	if !errors.As(err, &se) {
		t.Fatalf("schema error not in the chain: %v", err)
	}
}
