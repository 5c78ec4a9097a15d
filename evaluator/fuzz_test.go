package evaluator

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzEvaluate compiles random flag JSON and, when it compiles, evaluates it
// with random contexts and overrides. Evaluation must never panic, any value
// it returns must have the flag's type, Raw must encode Value, and Explain and
// EvaluateAll must agree with Evaluate.
func FuzzEvaluate(f *testing.F) {
	seeds := []struct {
		spec, override, attrs                    string
		user, org, role, device, class, bucketBy string
		offset                                   int64
	}{
		{`{"type":"Boolean","enabled":true}`, `true`, `{}`, "alice", "acme", "admin", "d1", "phone", "", 0},
		{`{"type":"String","enabled":true,"value":"a","offValue":"b","schema":{"enum":["a","b","c"]},"rules":[{"name":"r","match":[{"attribute":"country","operator":"In","values":["DE"]}],"value":"c"}]}`,
			`"c"`, `{"country":"DE"}`, "bob", "", "", "", "", "", 0},
		{`{"type":"Number","value":1,"rollout":{"percentage":50,"bucketBy":"team"},"schedule":[{"at":"2030-01-01T12:00:00Z","enabled":true,"rolloutPercentage":75,"value":2}]}`,
			`3`, `{"team":7}`, "", "org", "", "", "", "team", int64(time.Hour)},
		{`{"type":"Object","enabled":true,"value":{"a":1},"allowedRoles":["admin"],"allowList":{"users":["u"],"orgs":["o"]},"deviceClasses":["charger"]}`,
			`{"b":2}`, `{"x":[1]}`, "u", "o", "admin", "d", "charger", "", -1},
		{`{"type":"String","enabled":true,"value":"v","rules":[{"name":"m","match":[{"attribute":"email","operator":"Matches","values":["^a.*@x$"]},{"attribute":"v","operator":"SemVerAtLeast","values":["1.2.3"]},{"attribute":"n","operator":"GreaterThan","values":["2"]},{"attribute":"n","operator":"LessThan","values":["9"]}]}]}`,
			`null`, `{"email":"ab@x","v":"1.3.0","n":5}`, "", "", "", "", "", "", 0},
		{`{"type":"Boolean","enabled":false,"offValue":false,"rules":[{"name":"x","match":[{"attribute":"deviceClass","operator":"NotIn","values":["tv"]},{"attribute":"orgId","operator":"StartsWith","values":["a"]},{"attribute":"orgId","operator":"EndsWith","values":["e"]},{"attribute":"role","operator":"Exists"}]}]}`,
			`false`, `{}`, "", "acme", "r", "", "tablet", "", 0},
	}
	for _, s := range seeds {
		f.Add([]byte(s.spec), []byte(s.override), []byte(s.attrs), s.user, s.org, s.role, s.device, s.class, s.offset)
	}
	f.Fuzz(func(t *testing.T, specJSON, overrideJSON, attrsJSON []byte, user, org, role, device, class string, offset int64) {
		var spec FlagSpec
		if err := json.Unmarshal(specJSON, &spec); err != nil {
			return
		}
		flag, err := Compile("fz", spec)
		if err != nil {
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("compile error without field errors: %v", err)
			}
			return
		}
		clk := newFakeClock(t0.Add(time.Duration(offset)))
		s := NewStore(WithClock(clk))
		entry := OverrideEntry{Key: "fz", Value: json.RawMessage(overrideJSON)}
		if !json.Valid(overrideJSON) {
			entry.Value = nil
		}
		ops := []Op{
			UpsertCompiledFlag("ns", flag),
			UpsertOverride(userOverride("ns", "u", user+"x", created, entry)),
			UpsertOverride(deviceOverride("ns", "u", device+"x", created, OverrideEntry{Key: "fz", Enabled: ptr(len(user)%2 == 0)})),
		}
		if _, _, err := s.Apply(ops...); err != nil {
			t.Fatalf("apply: %v", err)
		}
		var attrs map[string]any
		_ = json.Unmarshal(attrsJSON, &attrs)
		ctxs := []Context{
			{UserID: user, OrgID: org, Role: role, DeviceID: device, DeviceClass: class, Attributes: attrs},
			{UserID: user + "x", DeviceID: device + "x", DeviceClass: class, Role: role, Attributes: attrs},
			{TargetingKey: user, Attributes: attrs},
		}
		h := s.Namespace("ns")
		for _, ctx := range ctxs {
			r := h.Evaluate(ctx, "fz")
			checkFuzzResult(t, spec.Type, r)
			if tr := h.Explain("fz", ctx); !reflect.DeepEqual(tr.Result, r) || tr.String() == "" {
				t.Fatalf("explain disagrees: %v vs %v", tr.Result, r)
			}
			all := h.EvaluateAll(ctx)
			gated := r.Source == SourceRoleGate
			if gated != (len(all) == 0) || (!gated && !reflect.DeepEqual(all[0], r)) {
				t.Fatalf("EvaluateAll disagrees: %v vs %v", all, r)
			}
		}
		for _, step := range flag.ScheduleInstants() {
			for _, at := range []time.Time{step.Add(-1), step} {
				clk.Set(at)
				s.Tick(at)
				checkFuzzResult(t, spec.Type, h.Evaluate(ctxs[0], "fz"))
			}
		}
	})
}

func checkFuzzResult(t *testing.T, typ FlagType, r Result) {
	t.Helper()
	if r.ErrorCode != ErrorNone {
		if r.Value != nil || r.Raw != nil || r.Reason != ReasonError {
			t.Fatalf("error result with a value: %+v", r)
		}
		return
	}
	if r.Value == nil {
		if r.Raw != nil || typ == TypeBoolean {
			t.Fatalf("missing value for %s flag: %+v", typ, r)
		}
		return
	}
	var ok bool
	switch typ {
	case TypeBoolean:
		var b bool
		b, ok = r.Value.(bool)
		ok = ok && b == r.Enabled
	case TypeString:
		_, ok = r.Value.(string)
	case TypeNumber:
		_, ok = r.Value.(float64)
	case TypeObject:
		_, ok = r.Value.(map[string]any)
	}
	if !ok {
		t.Fatalf("%s flag served %T %v", typ, r.Value, r.Value)
	}
	var decoded any
	if err := json.Unmarshal(r.Raw, &decoded); err != nil || !reflect.DeepEqual(decoded, r.Value) {
		t.Fatalf("Raw %s does not encode Value %#v", r.Raw, r.Value)
	}
}
