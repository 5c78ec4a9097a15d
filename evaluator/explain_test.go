package evaluator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestExplain(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	mustApply(t, s,
		UpsertFlag("ns", "f", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"on"`), OffValue: raw(`"off"`),
			AllowedRoles: []string{"dev", "admin"},
			AllowList:    &AllowList{Users: []string{"bob"}, Orgs: []string{"bigco"}},
			Rules: []Rule{
				{Name: "eu", Value: raw(`"eu"`), Match: []Condition{{Attribute: "country", Operator: OpIn, Values: []string{"DE", "FR"}}}},
				{Name: "staff", Match: []Condition{{Attribute: "email", Operator: OpExists}, {Attribute: "email", Operator: OpEndsWith, Values: []string{"@corp.com"}}}},
			},
			Rollout:  &Rollout{Percentage: 100},
			Schedule: []ScheduleStep{{At: t0.Add(-time.Hour), RolloutPercentage: ptr(int32(0))}, {At: t0.Add(time.Hour), Enabled: ptr(false)}},
		}),
		UpsertOverride(expiring(userOverride("ns", "old", "alice", created, val("f", `"x"`)), t0)),
		UpsertOverride(disabled(userOverride("ns", "dis", "alice", created, val("f", `"y"`)))),
		UpsertOverride(userOverride("ns", "bad", "alice", created, val("f", `1`))),
		UpsertOverride(deviceOverride("ns", "dev", "d1", created, on("f"))),
	)
	h := s.Namespace("ns")
	tests := []struct {
		name   string
		key    string
		ctx    Context
		result string
		lines  []string
	}{
		{
			name:   "rollout after every other step",
			key:    "f",
			ctx:    Context{UserID: "alice", Role: "admin", DeviceID: "d1", DeviceClass: "charger", Attributes: map[string]any{"country": "US", "email": "a@x.io"}},
			result: `value="off" enabled=false variant=off reason=SPLIT source=schedule:2030-01-01T11:00:00Z`,
			lines: []string{
				`flag "f" in namespace "ns" at 2030-01-01T12:00:00Z`,
				`context: userId="alice" role="admin" deviceId="d1" deviceClass="charger" country="US" email="a@x.io"`,
				`flag             passed       String flag`,
				`role-gate        passed       role "admin" is allowed`,
				`device-override  passed       device class "charger" is not eligible: overrides apply only to eligible devices (eligible: [phone tablet laptop])`,
				`user-override    passed       device class "charger" is not eligible: overrides apply only to eligible devices (eligible: [phone tablet laptop])`,
				`allow-list:user  passed       user "alice" is not allow-listed`,
				`allow-list:org   passed       context has no orgId`,
				`schedule         APPLIED      step 1 of 2 (at 2030-01-01T11:00:00Z) in effect: enabled=true (from spec), rollout=0% (from schedule:2030-01-01T11:00:00Z), value="on" (from spec)`,
				`kill-switch      passed       flag is enabled`,
				`rule:eu          passed       condition 0 (country In ["DE", "FR"]) does not match: country is "US"`,
				`rule:staff       passed       condition 1 (email EndsWith ["@corp.com"]) does not match: email is "a@x.io"`,
				`rollout          APPLIED      userId "alice" is in bucket 97 >= 0%: off`,
				`default          not reached  not reached`,
			},
		},
		{
			name:   "ignored user overrides",
			key:    "f",
			ctx:    Context{UserID: "alice", Role: "admin"},
			result: `value="off" enabled=false variant=off reason=SPLIT source=schedule:2030-01-01T11:00:00Z`,
			lines: []string{
				`device-override  passed       context has no deviceId`,
				`user-override    passed       ns/bad ignored: invalid value: string flag needs a json string, got number`,
				`user-override    passed       ns/dis ignored: override is disabled`,
				`user-override    passed       ns/old ignored: expired at 2030-01-01T12:00:00Z`,
				`user-override    passed       no applicable user override`,
			},
		},
		{
			name:   "device without a class",
			key:    "f",
			ctx:    Context{UserID: "alice", Role: "dev", DeviceID: "d1"},
			result: `value="off" enabled=false variant=off reason=SPLIT source=schedule:2030-01-01T11:00:00Z`,
			lines: []string{
				`device-override  passed       device "d1" has no deviceClass: overrides apply only to eligible devices (eligible: [phone tablet laptop])`,
				`user-override    passed       device "d1" has no deviceClass: overrides apply only to eligible devices (eligible: [phone tablet laptop])`,
			},
		},
		{
			name:   "role gate stops early",
			key:    "f",
			ctx:    Context{UserID: "alice", Role: "viewer"},
			result: `value="off" enabled=false variant=off reason=DISABLED source=role-gate`,
			lines: []string{
				`role-gate        APPLIED      role "viewer" is not in allowedRoles [dev admin]`,
				`device-override  not reached  not reached`,
				`rules            not reached  not reached`,
				`default          not reached  not reached`,
			},
		},
		{
			name:   "device override",
			key:    "f",
			ctx:    Context{Role: "dev", DeviceID: "d1", DeviceClass: "phone"},
			result: `value="on" enabled=true variant=on reason=TARGETING_MATCH source=device-override:ns/dev`,
			lines:  []string{`device-override  APPLIED      ns/dev turns the flag on`, `user-override    not reached  not reached`},
		},
		{
			name:   "org allow-list",
			key:    "f",
			ctx:    Context{Role: "dev", OrgID: "bigco"},
			result: `value="on" enabled=true variant=on reason=TARGETING_MATCH source=allow-list:org`,
			lines:  []string{`user-override    passed       context has no userId or targetingKey`, `allow-list:org   APPLIED      org "bigco" is allow-listed`, `schedule         not reached  not reached`},
		},
		{
			name:   "matching rule",
			key:    "f",
			ctx:    Context{Role: "dev", UserID: "carol", Attributes: map[string]any{"email": "c@corp.com"}},
			result: `value="on" enabled=true variant=staff reason=TARGETING_MATCH source=rule:staff`,
			lines:  []string{`rule:eu          passed       condition 0 (country In ["DE", "FR"]) does not match: country is absent`, `rule:staff       APPLIED      all 2 conditions match`},
		},
		{
			name:   "unknown flag",
			key:    "nope",
			result: `value=<none> enabled=false reason=ERROR error=FLAG_NOT_FOUND (flag not found)`,
			lines:  []string{`context: (empty)`, `flag             APPLIED      no flag "nope" in namespace "ns"`, `role-gate        not reached  not reached`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := h.Explain(tc.key, tc.ctx)
			out := tr.String()
			if !strings.HasSuffix(out, "result: "+tc.result) {
				t.Errorf("result line: want %q in\n%s", tc.result, out)
			}
			for _, l := range tc.lines {
				if !strings.Contains(out, l) {
					t.Errorf("missing line %q in\n%s", l, out)
				}
			}
			if got := h.Evaluate(tc.ctx, tc.key); got.String() != tr.Result.String() {
				t.Errorf("Explain result %s differs from Evaluate %s", tr.Result, got)
			}
			if _, err := json.Marshal(tr); err != nil {
				t.Errorf("trace does not marshal: %v", err)
			}
		})
	}
}

func TestExplainSchedule(t *testing.T) {
	at := t0.Add(time.Hour)
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s,
		UpsertFlag("ns", "later", FlagSpec{Type: TypeBoolean, Schedule: []ScheduleStep{{At: at, Enabled: ptr(true)}}}),
		UpsertFlag("ns", "plain", boolFlag(false)),
		UpsertFlag("ns", "broken", FlagSpec{Type: TypeBoolean, Value: raw(`false`)}),
	)
	tests := []struct{ key, line string }{
		{"later", "schedule         passed       no step in effect yet; first step at 2030-01-01T13:00:00Z"},
		{"later", "kill-switch      APPLIED      flag is disabled (enabled=false from kill-switch)"},
		{"plain", "schedule         passed       no schedule"},
		{"broken", "flag             APPLIED      flag failed to compile: spec.value: boolean flag value must be true or omitted"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if out := s.Namespace("ns").Explain(tc.key, Context{}).String(); !strings.Contains(out, tc.line) {
				t.Fatalf("missing %q in\n%s", tc.line, out)
			}
		})
	}
	if out := (Namespace{}).Explain("x", Context{}).String(); !strings.Contains(out, "namespace handle is not initialised") {
		t.Fatalf("zero handle: %s", out)
	}
}

func TestResultString(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Raw: raw(`1`), Value: 1.0, Enabled: true, Variant: "on", Reason: ReasonStatic, Source: "default"}, `value=1 enabled=true variant=on reason=STATIC source=default`},
		{Result{Reason: ReasonError, ErrorCode: ErrorParse, ErrorMessage: "bad"}, `value=<none> enabled=false reason=ERROR error=PARSE_ERROR (bad)`},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
	c := Context{TargetingKey: "t", OrgID: "o", Attributes: map[string]any{"b": true, "a": 1}}
	if got := c.String(); got != `targetingKey="t" orgId="o" a=1 b=true` {
		t.Errorf("Context.String() = %q", got)
	}
}

func TestReasonAndErrorCodeText(t *testing.T) {
	r := Result{Key: "k", Value: true, Raw: raw(`true`), Enabled: true, Variant: "on", Reason: ReasonTargetingMatch, Source: "rule:x"}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"key":"k","value":true,"variant":"on","source":"rule:x","enabled":true,"reason":"TARGETING_MATCH"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	e := Result{Key: "k", Reason: ReasonError, ErrorCode: ErrorInvalidContext, ErrorMessage: "m"}
	b, _ = json.Marshal(e)
	var back struct {
		Reason    Reason    `json:"reason"`
		ErrorCode ErrorCode `json:"errorCode"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Reason != ReasonError || back.ErrorCode != ErrorInvalidContext {
		t.Fatalf("round trip of %s: %+v %v", b, back, err)
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"reason", ReasonSplit.String(), "SPLIT"},
		{"zero reason", Reason(0).String(), ""},
		{"unknown reason", Reason(42).String(), "Reason(42)"},
		{"error code", ErrorParse.String(), "PARSE_ERROR"},
		{"no error", ErrorNone.String(), ""},
		{"unknown error code", ErrorCode(9).String(), "ErrorCode(9)"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if _, err := Reason(42).MarshalText(); err == nil {
		t.Error("unknown reason marshals")
	}
	if _, err := ErrorCode(9).MarshalText(); err == nil {
		t.Error("unknown error code marshals")
	}
	var rr Reason
	if err := rr.UnmarshalText([]byte("NOPE")); err == nil || err.Error() != `unknown reason "NOPE"` {
		t.Errorf("unmarshal unknown reason: %v", err)
	}
	var ec ErrorCode
	if err := ec.UnmarshalText([]byte("NOPE")); err == nil {
		t.Error("unmarshal unknown error code")
	}
}
