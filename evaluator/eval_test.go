package evaluator

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// want describes an expected Result; value is the JSON of the served value
// or "" for no value.
type want struct {
	value   string
	enabled bool
	variant string
	reason  Reason
	source  string
	code    ErrorCode
}

func checkResult(t *testing.T, r Result, w want) {
	t.Helper()
	got := want{value: string(r.Raw), enabled: r.Enabled, variant: r.Variant, reason: r.Reason, source: r.Source, code: r.ErrorCode}
	if got != w {
		t.Fatalf("result mismatch\n got: %+v\nwant: %+v\n(%s)", got, w, r)
	}
	if (r.Raw == nil) != (r.Value == nil) {
		t.Fatalf("Raw %q and Value %#v disagree about presence", r.Raw, r.Value)
	}
	if r.Raw != nil {
		var decoded any
		if err := json.Unmarshal(r.Raw, &decoded); err != nil || !reflect.DeepEqual(decoded, r.Value) {
			t.Fatalf("Value %#v does not match Raw %s (%v)", r.Value, r.Raw, err)
		}
	}
}

var (
	created = t0.Add(-24 * time.Hour)
	later   = t0.Add(time.Hour)
)

func expiring(o Override, at time.Time) Override {
	o.ExpiresAt = &at
	return o
}

func disabled(o Override) Override {
	o.Enabled = false
	return o
}

func TestResolutionOrder(t *testing.T) {
	onOff := FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"on"`), OffValue: raw(`"off"`)}
	withRoles := func(s FlagSpec, roles ...string) FlagSpec { s.AllowedRoles = roles; return s }
	killed := func(s FlagSpec) FlagSpec { s.Enabled = false; return s }
	withAllow := func(s FlagSpec, users, orgs []string) FlagSpec {
		s.AllowList = &AllowList{Users: users, Orgs: orgs}
		return s
	}
	withRules := func(s FlagSpec, rules ...Rule) FlagSpec { s.Rules = rules; return s }
	withRollout := func(s FlagSpec, pct int32, by string) FlagSpec {
		s.Rollout = &Rollout{Percentage: pct, BucketBy: by}
		return s
	}
	withClasses := func(s FlagSpec, classes ...string) FlagSpec { s.DeviceClasses = classes; return s }
	betaRule := Rule{Name: "beta", Value: raw(`"beta"`), Match: []Condition{{Attribute: "plan", Operator: OpIn, Values: []string{"beta"}}}}
	alice := Context{UserID: "alice", OrgID: "acme", Role: "admin", DeviceID: "phone-1", DeviceClass: "phone",
		Attributes: map[string]any{"plan": "beta"}}
	ctxWith := func(f func(*Context)) Context {
		c := alice
		f(&c)
		return c
	}
	userOv := userOverride("ns", "alice-ov", "alice", created, val("f", `"user"`))
	devOv := deviceOverride("ns", "phone-ov", "phone-1", created, val("f", `"device"`))

	const (
		userSrc = SourceUserOverride + "ns/alice-ov"
		devSrc  = SourceDeviceOverride + "ns/phone-ov"
	)
	tests := []struct {
		name      string
		spec      FlagSpec
		overrides []Override
		ctx       Context
		now       time.Time
		want      want
	}{
		{name: "unknown flag", spec: onOff, ctx: alice, want: want{reason: ReasonError, code: ErrorFlagNotFound}},
		{name: "role gate beats overrides", spec: withRoles(onOff, "ops"), overrides: []Override{userOv, devOv}, ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceRoleGate}},
		{name: "role gate without role in context", spec: withRoles(onOff, "admin"), ctx: ctxWith(func(c *Context) { c.Role = "" }),
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceRoleGate}},
		// Seed 004: a context without a role is a guest, signed out.
		{name: "no role in the context is a guest, let through when guest is allowed", spec: withRoles(onOff, RoleGuest, "user"),
			overrides: []Override{userOv}, ctx: Context{UserID: "alice"},
			want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "a guest is gated out of a flag for signed-in roles, overrides included", spec: withRoles(onOff, "user", "admin"),
			overrides: []Override{userOv}, ctx: Context{UserID: "alice"},
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceRoleGate}},
		{name: "an explicit role other than guest is gated out of a guest-only flag", spec: withRoles(onOff, RoleGuest), ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceRoleGate}},
		{name: "allowed role passes the gate", spec: withRoles(onOff, "ops", "admin"), overrides: []Override{devOv}, ctx: alice,
			want: want{value: `"device"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: devSrc}},
		{name: "device override beats user override", spec: onOff, overrides: []Override{userOv, devOv}, ctx: alice,
			want: want{value: `"device"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: devSrc}},
		// Seed 000: user-tier values apply only to flag-eligible devices, so
		// a device context without an eligible class gets neither tier.
		{name: "ineligible device class ignores device and user overrides", spec: onOff, overrides: []Override{userOv, devOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceClass = "charger" }),
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "device without a class gets no overrides", spec: onOff, overrides: []Override{userOv, devOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceClass = "" }),
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "device without a class gets no user override", spec: killed(onOff), overrides: []Override{userOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceClass = "" }),
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "charger without a device id gets no user override", spec: onOff, overrides: []Override{userOv},
			ctx:  Context{UserID: "alice", DeviceClass: "charger"},
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "class ineligible for this flag skips the user override", spec: withClasses(onOff, "tablet"), overrides: []Override{userOv},
			ctx:  alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "eligible device gets the user override", spec: onOff, overrides: []Override{userOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceClass = "tablet" }),
			want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "no device in the context: the user override applies", spec: onOff, overrides: []Override{userOv},
			ctx:  Context{UserID: "alice"},
			want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "ineligible device still gets allow-lists", spec: withAllow(killed(onOff), []string{"alice"}, nil), overrides: []Override{userOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceClass = "charger" }),
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonTargetingMatch, source: SourceAllowListUser}},
		{name: "custom device classes", spec: withClasses(onOff, "charger"), overrides: []Override{devOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceClass = "charger" }),
			want: want{value: `"device"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: devSrc}},
		{name: "custom device classes exclude phone", spec: withClasses(onOff, "charger"), overrides: []Override{devOv}, ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "device override needs a device id", spec: onOff, overrides: []Override{devOv},
			ctx:  ctxWith(func(c *Context) { c.DeviceID = "" }),
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "user override beats kill switch", spec: killed(onOff), overrides: []Override{userOv}, ctx: alice,
			want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "user override beats allow-list", spec: withAllow(onOff, []string{"alice"}, nil),
			overrides: []Override{userOverride("ns", "alice-ov", "alice", created, off("f"))}, ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "targetingKey is the user id", spec: onOff, overrides: []Override{userOv},
			ctx:  Context{TargetingKey: "alice"},
			want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "user override entry enabled serves on value", spec: killed(onOff),
			overrides: []Override{userOverride("ns", "alice-ov", "alice", created, on("f"))}, ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "override entry without enabled or value serves on value", spec: killed(onOff),
			overrides: []Override{userOverride("ns", "alice-ov", "alice", created, OverrideEntry{Key: "f"})}, ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "override entry enabled false wins over its value", spec: onOff,
			overrides: []Override{userOverride("ns", "alice-ov", "alice", created, OverrideEntry{Key: "f", Enabled: ptr(false), Value: raw(`"x"`)})},
			ctx:       alice, want: want{value: `"off"`, variant: VariantOff, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "expired override falls through", spec: killed(onOff), overrides: []Override{expiring(userOv, t0)}, ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "override applies until one nanosecond before expiry", spec: killed(onOff), overrides: []Override{expiring(userOv, t0.Add(time.Nanosecond))},
			ctx: alice, want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "expired device override falls through to user override", spec: onOff, overrides: []Override{userOv, expiring(devOv, t0.Add(-time.Second))},
			ctx: alice, want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "disabled override falls through", spec: killed(onOff), overrides: []Override{disabled(userOv)}, ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "invalid override value falls through", spec: onOff,
			overrides: []Override{userOverride("ns", "alice-ov", "alice", created, val("f", `42`))}, ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "override value failing the schema falls through", spec: withSchema(onOff, `{"enum":["on","off","user"]}`),
			overrides: []Override{userOverride("ns", "alice-ov", "alice", created, val("f", `"nope"`))}, ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "invalid device override falls through to user override", spec: onOff,
			overrides: []Override{userOv, deviceOverride("ns", "phone-ov", "phone-1", created, val("f", `true`))}, ctx: alice,
			want: want{value: `"user"`, enabled: true, variant: VariantOverride, reason: ReasonTargetingMatch, source: userSrc}},
		{name: "override of another namespace does not apply", spec: onOff,
			overrides: []Override{userOverride("other", "alice-ov", "alice", created, val("f", `"user"`))}, ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "allow-list beats kill switch", spec: withAllow(killed(onOff), []string{"alice"}, nil), ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonTargetingMatch, source: SourceAllowListUser}},
		{name: "org allow-list beats kill switch", spec: withAllow(killed(onOff), nil, []string{"acme"}), ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonTargetingMatch, source: SourceAllowListOrg}},
		{name: "user allow-list before org allow-list", spec: withAllow(killed(onOff), []string{"alice"}, []string{"acme"}), ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonTargetingMatch, source: SourceAllowListUser}},
		{name: "allow-list miss falls through", spec: withAllow(killed(onOff), []string{"bob"}, []string{"other"}), ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "kill switch beats rules", spec: withRules(killed(onOff), betaRule), ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "kill switch without off value serves no value", spec: FlagSpec{Type: TypeNumber, Value: raw(`3`)}, ctx: alice,
			want: want{variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "boolean kill switch serves false", spec: boolFlag(false), ctx: alice,
			want: want{value: `false`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch}},
		{name: "first matching rule wins", spec: withRules(onOff,
			Rule{Name: "no", Value: raw(`"no"`), Match: []Condition{{Attribute: "plan", Operator: OpIn, Values: []string{"free"}}}},
			betaRule,
			Rule{Name: "all", Value: raw(`"all"`)}), ctx: alice,
			want: want{value: `"beta"`, enabled: true, variant: "beta", reason: ReasonTargetingMatch, source: "rule:beta"}},
		{name: "rule without value serves on value", spec: withRules(onOff, Rule{Name: "admins",
			Match: []Condition{{Attribute: "role", Operator: OpIn, Values: []string{"admin"}}}}), ctx: alice,
			want: want{value: `"on"`, enabled: true, variant: "admins", reason: ReasonTargetingMatch, source: "rule:admins"}},
		{name: "boolean rule may serve false", spec: FlagSpec{Type: TypeBoolean, Enabled: true, Rules: []Rule{{Name: "no-beta", Value: raw(`false`)}}},
			ctx: alice, want: want{value: `false`, variant: "no-beta", reason: ReasonTargetingMatch, source: "rule:no-beta"}},
		{name: "rules beat rollout", spec: withRollout(withRules(onOff, betaRule), 0, ""), ctx: alice,
			want: want{value: `"beta"`, enabled: true, variant: "beta", reason: ReasonTargetingMatch, source: "rule:beta"}},
		{name: "unmatched rules fall through to rollout", spec: withRollout(withRules(onOff, betaRule), 0, ""),
			ctx:  ctxWith(func(c *Context) { c.Attributes = nil }),
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonSplit, source: SourceRollout}},
		{name: "rollout 100 percent", spec: withRollout(onOff, 100, ""), ctx: Context{UserID: "bob"},
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonSplit, source: SourceRollout}},
		// Bucket("f", "alice") = 97, Bucket("f", "acme") = 95.
		{name: "rollout buckets by user id", spec: withRollout(onOff, 96, ""), ctx: Context{UserID: "alice", OrgID: "acme"},
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonSplit, source: SourceRollout}},
		{name: "rollout falls back to org id", spec: withRollout(onOff, 96, ""), ctx: Context{OrgID: "acme"},
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonSplit, source: SourceRollout}},
		{name: "rollout by free attribute", spec: withRollout(onOff, 96, "team"), ctx: Context{UserID: "alice", Attributes: map[string]any{"team": "acme"}},
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonSplit, source: SourceRollout}},
		{name: "rollout without principal serves off", spec: withRollout(onOff, 100, ""), ctx: Context{Role: "admin"},
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonSplit, source: SourceRollout}},
		{name: "rollout with missing bucketBy attribute serves off", spec: withRollout(onOff, 100, "team"), ctx: alice,
			want: want{value: `"off"`, variant: VariantOff, reason: ReasonSplit, source: SourceRollout}},
		{name: "rollout with unsupported bucketBy type", spec: withRollout(onOff, 100, "team"),
			ctx: Context{UserID: "a", Attributes: map[string]any{"team": []string{"x"}}}, want: want{reason: ReasonError, source: SourceRollout, code: ErrorInvalidContext}},
		{name: "default serves on value", spec: onOff, ctx: Context{},
			want: want{value: `"on"`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "object flag", spec: FlagSpec{Type: TypeObject, Enabled: true, Value: raw(`{ "a": [1, 2] }`)}, ctx: Context{},
			want: want{value: `{"a":[1,2]}`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault}},
		{name: "unsupported attribute type in a rule", spec: withRules(onOff, betaRule),
			ctx: Context{Attributes: map[string]any{"plan": map[string]any{}}}, want: want{reason: ReasonError, source: "rule:beta", code: ErrorInvalidContext}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock(t0)
			s := NewStore(WithClock(clk))
			key := "f"
			if tc.want.code == ErrorFlagNotFound {
				key = "other"
			}
			ops := []Op{UpsertFlag("ns", key, tc.spec)}
			for _, o := range tc.overrides {
				ops = append(ops, UpsertOverride(o))
			}
			mustApply(t, s, ops...)
			if !tc.now.IsZero() {
				clk.Set(tc.now)
			}
			h := s.Namespace("ns")
			r := h.Evaluate(tc.ctx, "f")
			checkResult(t, r, tc.want)
			if r.Key != "f" {
				t.Fatalf("key = %q", r.Key)
			}
			tr := h.Explain("f", tc.ctx)
			if !reflect.DeepEqual(tr.Result, r) {
				t.Fatalf("explain result differs:\n%v\n%v", tr.Result, r)
			}
			if !reflect.DeepEqual(s.Evaluate("ns", tc.ctx, "f"), r) {
				t.Fatal("Store.Evaluate differs from Namespace.Evaluate")
			}
		})
	}
}

func withSchema(s FlagSpec, schema string) FlagSpec {
	s.Schema = raw(schema)
	return s
}

func TestConflictingOverrides(t *testing.T) {
	spec := FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"on"`)}
	tests := []struct {
		name      string
		overrides []Override
		want      string // served value
		source    string
	}{
		{
			name: "older created wins",
			overrides: []Override{
				userOverride("ns", "a-new", "alice", created.Add(time.Minute), val("f", `"new"`)),
				userOverride("ns", "z-old", "alice", created, val("f", `"old"`)),
			},
			want: `"old"`, source: "user-override:ns/z-old",
		},
		{
			name: "equal created: lower name wins",
			overrides: []Override{
				userOverride("ns", "b", "alice", created, val("f", `"b"`)),
				userOverride("ns", "a", "alice", created, val("f", `"a"`)),
			},
			want: `"a"`, source: "user-override:ns/a",
		},
		{
			name: "disabled winner lets the next one apply",
			overrides: []Override{
				disabled(userOverride("ns", "a", "alice", created, val("f", `"a"`))),
				userOverride("ns", "b", "alice", created, val("f", `"b"`)),
			},
			want: `"b"`, source: "user-override:ns/b",
		},
		{
			name: "expired winner lets the next one apply",
			overrides: []Override{
				expiring(userOverride("ns", "a", "alice", created, val("f", `"a"`)), t0),
				userOverride("ns", "b", "alice", created, val("f", `"b"`)),
			},
			want: `"b"`, source: "user-override:ns/b",
		},
		{
			name: "invalid winner lets the next one apply",
			overrides: []Override{
				userOverride("ns", "a", "alice", created, val("f", `1`)),
				userOverride("ns", "b", "alice", created, val("f", `"b"`)),
			},
			want: `"b"`, source: "user-override:ns/b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(WithClock(newFakeClock(t0)))
			ops := []Op{UpsertFlag("ns", "f", spec)}
			for _, o := range tc.overrides {
				ops = append(ops, UpsertOverride(o))
			}
			mustApply(t, s, ops...)
			r := s.Evaluate("ns", Context{UserID: "alice"}, "f")
			if string(r.Raw) != tc.want || r.Source != tc.source {
				t.Fatalf("got %s from %s, want %s from %s", r.Raw, r.Source, tc.want, tc.source)
			}
		})
	}
}

func TestScheduleSwitchesExactlyAtInstant(t *testing.T) {
	at := t0.Add(time.Hour)
	atSrc := "schedule:" + at.Format(time.RFC3339)
	tests := []struct {
		name          string
		spec          FlagSpec
		ctx           Context
		before, after want
	}{
		{
			name:   "enabled turns on",
			spec:   FlagSpec{Type: TypeBoolean, Schedule: []ScheduleStep{{At: at, Enabled: ptr(true)}}},
			before: want{value: `false`, variant: VariantOff, reason: ReasonDisabled, source: SourceKillSwitch},
			after:  want{value: `true`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: atSrc},
		},
		{
			name:   "enabled turns off",
			spec:   FlagSpec{Type: TypeBoolean, Enabled: true, Schedule: []ScheduleStep{{At: at, Enabled: ptr(false)}}},
			before: want{value: `true`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault},
			after:  want{value: `false`, variant: VariantOff, reason: ReasonDisabled, source: atSrc},
		},
		{
			name: "rollout percentage changes",
			spec: FlagSpec{Type: TypeBoolean, Enabled: true, Rollout: &Rollout{Percentage: 0},
				Schedule: []ScheduleStep{{At: at, RolloutPercentage: ptr(int32(100))}}},
			ctx:    Context{UserID: "alice"},
			before: want{value: `false`, variant: VariantOff, reason: ReasonSplit, source: SourceRollout},
			after:  want{value: `true`, enabled: true, variant: VariantOn, reason: ReasonSplit, source: atSrc},
		},
		{
			name: "schedule adds a rollout",
			spec: FlagSpec{Type: TypeBoolean, Enabled: true,
				Schedule: []ScheduleStep{{At: at, RolloutPercentage: ptr(int32(0))}}},
			ctx:    Context{UserID: "alice"},
			before: want{value: `true`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault},
			after:  want{value: `false`, variant: VariantOff, reason: ReasonSplit, source: atSrc},
		},
		{
			name: "value changes",
			spec: FlagSpec{Type: TypeNumber, Enabled: true, Value: raw(`1`),
				Schedule: []ScheduleStep{{At: at, Value: raw(`2`)}}},
			before: want{value: `1`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: SourceDefault},
			after:  want{value: `2`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: atSrc},
		},
		{
			name: "earlier step keeps its setting, later step adds",
			spec: FlagSpec{Type: TypeNumber, Value: raw(`1`), Schedule: []ScheduleStep{
				{At: at, Value: raw(`3`)},
				{At: t0.Add(-time.Hour), Enabled: ptr(true)},
			}},
			before: want{value: `1`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: "schedule:" + t0.Add(-time.Hour).Format(time.RFC3339)},
			after:  want{value: `3`, enabled: true, variant: VariantOn, reason: ReasonStatic, source: atSrc},
		},
		{
			name: "rule serves the scheduled on value under its own source",
			spec: FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"a"`), Rules: []Rule{{Name: "all"}},
				Schedule: []ScheduleStep{{At: at, Value: raw(`"b"`)}}},
			before: want{value: `"a"`, enabled: true, variant: "all", reason: ReasonTargetingMatch, source: "rule:all"},
			after:  want{value: `"b"`, enabled: true, variant: "all", reason: ReasonTargetingMatch, source: "rule:all"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock(t0)
			s := NewStore(WithClock(clk))
			mustApply(t, s, UpsertFlag("ns", "f", tc.spec))
			h := s.Namespace("ns")
			clk.Set(at.Add(-time.Nanosecond))
			checkResult(t, h.Evaluate(tc.ctx, "f"), tc.before)
			clk.Set(at)
			checkResult(t, h.Evaluate(tc.ctx, "f"), tc.after)
			clk.Set(at.Add(time.Hour))
			checkResult(t, h.Evaluate(tc.ctx, "f"), tc.after)
		})
	}
}

func TestOverrideServesScheduledOnValue(t *testing.T) {
	at := t0.Add(time.Minute)
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	mustApply(t, s,
		UpsertFlag("ns", "f", FlagSpec{Type: TypeString, Value: raw(`"v1"`), Schedule: []ScheduleStep{{At: at, Value: raw(`"v2"`)}}}),
		UpsertOverride(userOverride("ns", "o", "alice", created, on("f"))))
	h := s.Namespace("ns")
	if r := h.Evaluate(Context{UserID: "alice"}, "f"); string(r.Raw) != `"v1"` {
		t.Fatalf("before: %s", r)
	}
	clk.Set(at)
	if r := h.Evaluate(Context{UserID: "alice"}, "f"); string(r.Raw) != `"v2"` || r.Source != "user-override:ns/o" {
		t.Fatalf("after: %s", r)
	}
}

func TestConditions(t *testing.T) {
	tests := []struct {
		name  string
		cond  Condition
		attrs map[string]any
		ctx   Context
		match bool
	}{
		{"in string", Condition{"country", OpIn, []string{"DE", "FR"}}, map[string]any{"country": "FR"}, Context{}, true},
		{"in string miss", Condition{"country", OpIn, []string{"DE"}}, map[string]any{"country": "de"}, Context{}, false},
		{"in number", Condition{"age", OpIn, []string{"30", "40"}}, map[string]any{"age": 40}, Context{}, true},
		{"in number float", Condition{"age", OpIn, []string{"30.5"}}, map[string]any{"age": 30.5}, Context{}, true},
		{"in json number", Condition{"age", OpIn, []string{"30"}}, map[string]any{"age": json.Number("30")}, Context{}, true},
		{"in bool", Condition{"beta", OpIn, []string{"true"}}, map[string]any{"beta": true}, Context{}, true},
		{"in bool miss", Condition{"beta", OpIn, []string{"true"}}, map[string]any{"beta": false}, Context{}, false},
		{"in missing", Condition{"country", OpIn, []string{"DE"}}, nil, Context{}, false},
		{"in nil attribute", Condition{"country", OpIn, []string{"DE"}}, map[string]any{"country": nil}, Context{}, false},
		{"not in", Condition{"country", OpNotIn, []string{"DE"}}, map[string]any{"country": "FR"}, Context{}, true},
		{"not in listed", Condition{"country", OpNotIn, []string{"DE"}}, map[string]any{"country": "DE"}, Context{}, false},
		{"not in missing attribute", Condition{"country", OpNotIn, []string{"DE"}}, nil, Context{}, false},
		{"starts with", Condition{"email", OpStartsWith, []string{"x", "ad"}}, map[string]any{"email": "admin@x"}, Context{}, true},
		{"starts with miss", Condition{"email", OpStartsWith, []string{"x"}}, map[string]any{"email": "admin@x"}, Context{}, false},
		{"starts with number", Condition{"build", OpStartsWith, []string{"12"}}, map[string]any{"build": 1234}, Context{}, true},
		{"ends with", Condition{"email", OpEndsWith, []string{"@example.com"}}, map[string]any{"email": "a@example.com"}, Context{}, true},
		{"ends with miss", Condition{"email", OpEndsWith, []string{"@example.com"}}, map[string]any{"email": "a@example.org"}, Context{}, false},
		{"matches any", Condition{"email", OpMatches, []string{`^b`, `@corp\.`}}, map[string]any{"email": "a@corp.io"}, Context{}, true},
		{"matches none", Condition{"email", OpMatches, []string{`^b`}}, map[string]any{"email": "a@corp.io"}, Context{}, false},
		{"matches bool", Condition{"beta", OpMatches, []string{`^tr`}}, map[string]any{"beta": true}, Context{}, true},
		{"exists", Condition{"email", OpExists, nil}, map[string]any{"email": ""}, Context{}, true},
		{"exists missing", Condition{"email", OpExists, nil}, nil, Context{}, false},
		{"exists well-known", Condition{"orgId", OpExists, nil}, nil, Context{OrgID: "o"}, true},
		{"exists well-known empty", Condition{"orgId", OpExists, nil}, map[string]any{"orgId": "o"}, Context{}, false},
		{"greater than", Condition{"age", OpGreaterThan, []string{"18"}}, map[string]any{"age": 18.5}, Context{}, true},
		{"greater than equal", Condition{"age", OpGreaterThan, []string{"18"}}, map[string]any{"age": int64(18)}, Context{}, false},
		{"greater than string number", Condition{"age", OpGreaterThan, []string{"18"}}, map[string]any{"age": " 19 "}, Context{}, true},
		{"greater than not a number", Condition{"age", OpGreaterThan, []string{"18"}}, map[string]any{"age": "old"}, Context{}, false},
		{"greater than bool", Condition{"age", OpGreaterThan, []string{"0"}}, map[string]any{"age": true}, Context{}, false},
		{"greater than uint", Condition{"n", OpGreaterThan, []string{"1e18"}}, map[string]any{"n": uint64(1 << 63)}, Context{}, true},
		{"less than", Condition{"age", OpLessThan, []string{"18"}}, map[string]any{"age": uint8(17)}, Context{}, true},
		{"less than float32", Condition{"score", OpLessThan, []string{"0.5"}}, map[string]any{"score": float32(0.25)}, Context{}, true},
		{"less than miss", Condition{"age", OpLessThan, []string{"-1"}}, map[string]any{"age": int8(0)}, Context{}, false},
		{"semver at least", Condition{"appVersion", OpSemVerAtLeast, []string{"2.3.0"}}, map[string]any{"appVersion": "2.10.1"}, Context{}, true},
		{"semver equal", Condition{"appVersion", OpSemVerAtLeast, []string{"2.3.0"}}, map[string]any{"appVersion": "v2.3.0"}, Context{}, true},
		{"semver prerelease is lower", Condition{"appVersion", OpSemVerAtLeast, []string{"2.3.0"}}, map[string]any{"appVersion": "2.3.0-beta.1"}, Context{}, false},
		{"semver lower", Condition{"appVersion", OpSemVerAtLeast, []string{"2.3.0"}}, map[string]any{"appVersion": "2.2.9"}, Context{}, false},
		{"semver unparsable", Condition{"appVersion", OpSemVerAtLeast, []string{"2.3.0"}}, map[string]any{"appVersion": "latest"}, Context{}, false},
		{"semver number attribute", Condition{"appVersion", OpSemVerAtLeast, []string{"2.0.0"}}, map[string]any{"appVersion": 3}, Context{}, true},
		{"well-known user id falls back to targetingKey", Condition{"userId", OpIn, []string{"t"}}, nil, Context{TargetingKey: "t"}, true},
		{"well-known fields", Condition{"deviceClass", OpIn, []string{"tablet"}}, nil, Context{DeviceClass: "tablet"}, true},
		{"targetingKey", Condition{"targetingKey", OpIn, []string{"t"}}, nil, Context{TargetingKey: "t", UserID: "u"}, true},
		{"role", Condition{"role", OpIn, []string{"admin"}}, nil, Context{Role: "admin"}, true},
		{"device id", Condition{"deviceId", OpStartsWith, []string{"ios-"}}, nil, Context{DeviceID: "ios-1"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile("f", FlagSpec{Type: TypeBoolean, Enabled: true, Rollout: &Rollout{Percentage: 0},
				Rules: []Rule{{Name: "r", Match: []Condition{tc.cond}}}})
			if err != nil {
				t.Fatal(err)
			}
			s := NewStore(WithClock(newFakeClock(t0)))
			mustApply(t, s, UpsertCompiledFlag("ns", f))
			ctx := tc.ctx
			ctx.Attributes = tc.attrs
			r := s.Evaluate("ns", ctx, "f")
			if got := r.Source == "rule:r"; got != tc.match {
				t.Fatalf("match = %v, want %v (%s)", got, tc.match, r)
			}
		})
	}
}

func TestEvaluateAll(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s,
		UpsertFlag("ns", "c", boolFlag(true)),
		UpsertFlag("ns", "a", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"x"`), AllowedRoles: []string{"admin"}}),
		UpsertFlag("ns", "b", FlagSpec{Type: TypeNumber, Value: raw(`1`)}),
		UpsertFlag("ns", "broken", FlagSpec{Type: "Nope"}),
		UpsertFlag("ns", "guests", FlagSpec{Type: TypeBoolean, Enabled: true, AllowedRoles: []string{"guest", "admin"}}),
		UpsertFlag("other", "z", boolFlag(true)),
		UpsertOverride(userOverride("ns", "o", "alice", created, off("c"))),
	)
	h := s.Namespace("ns")
	tests := []struct {
		name string
		ctx  Context
		keys []string
	}{
		{"viewer does not see role-gated flags", Context{UserID: "alice", Role: "viewer"}, []string{"b", "broken", "c"}},
		{"admin sees everything", Context{UserID: "alice", Role: "admin"}, []string{"a", "b", "broken", "c", "guests"}},
		{"a context without a role is a guest", Context{UserID: "alice"}, []string{"b", "broken", "c", "guests"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := h.EvaluateAll(tc.ctx)
			var keys []string
			for _, r := range rs {
				keys = append(keys, r.Key)
				if single := h.Evaluate(tc.ctx, r.Key); !reflect.DeepEqual(single, r) {
					t.Fatalf("bulk %v != single %v", r, single)
				}
			}
			if !reflect.DeepEqual(keys, tc.keys) {
				t.Fatalf("keys = %v, want %v", keys, tc.keys)
			}
			buf := make([]Result, 0, 8)
			if again := h.EvaluateAllInto(buf, tc.ctx); !reflect.DeepEqual(again, rs) {
				t.Fatalf("EvaluateAllInto differs: %v", again)
			}
		})
	}
	if rs := s.Namespace("missing").EvaluateAll(Context{}); rs != nil {
		t.Fatalf("missing namespace: %v", rs)
	}
	if rs := s.Namespace("missing").EvaluateAllInto([]Result{{Key: "stale"}}, Context{}); len(rs) != 0 {
		t.Fatalf("EvaluateAllInto must reset dst: %v", rs)
	}
	if got := h.Keys(); !reflect.DeepEqual(got, []string{"a", "b", "broken", "c", "guests"}) {
		t.Fatalf("keys = %v", got)
	}
}

func TestErrorResults(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "broken", FlagSpec{Type: TypeString}), UpsertFlag("ns", "b", boolFlag(true)))
	h := s.Namespace("ns")
	tests := []struct {
		name string
		eval func() Result
		code ErrorCode
		msg  string
	}{
		{"parse error", func() Result { return h.Evaluate(Context{}, "broken") }, ErrorParse, "spec.value: required for String flags"},
		{"not found", func() Result { return h.Evaluate(Context{}, "nope") }, ErrorFlagNotFound, "flag not found"},
		{"unknown namespace", func() Result { return s.Evaluate("nope", Context{}, "b") }, ErrorFlagNotFound, "flag not found"},
		{"type mismatch", func() Result { return h.EvaluateAs(Context{}, "b", TypeString) }, ErrorTypeMismatch, "flag type is Boolean, not String"},
		{"zero handle", func() Result { return Namespace{}.Evaluate(Context{}, "b") }, ErrorGeneral, "namespace handle is not initialised"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.eval()
			if r.Reason != ReasonError || r.ErrorCode != tc.code || r.ErrorMessage != tc.msg || r.Value != nil || r.Enabled {
				t.Fatalf("got %+v", r)
			}
		})
	}
	if r := h.EvaluateAs(Context{}, "b", TypeBoolean); r.ErrorCode != ErrorNone || r.Value != true {
		t.Fatalf("matching type: %+v", r)
	}
	if err := s.Snapshot().FlagError("ns", "broken"); err == nil || !strings.Contains(err.Error(), "spec.value") {
		t.Fatalf("FlagError = %v", err)
	}
	if err := s.Snapshot().FlagError("ns", "b"); err != nil {
		t.Fatalf("FlagError for a good flag = %v", err)
	}
}

func TestHelpers(t *testing.T) {
	type limits struct {
		Max  int      `json:"max"`
		Tags []string `json:"tags"`
	}
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s,
		UpsertFlag("ns", "on", boolFlag(true)),
		UpsertFlag("ns", "off", boolFlag(false)),
		UpsertFlag("ns", "str", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"x"`)}),
		UpsertFlag("ns", "str-off", FlagSpec{Type: TypeString, Value: raw(`"x"`), OffValue: raw(`"y"`)}),
		UpsertFlag("ns", "obj", FlagSpec{Type: TypeObject, Enabled: true, Value: raw(`{"max":3,"tags":["a"]}`)}),
		UpsertFlag("ns", "obj-off", FlagSpec{Type: TypeObject, Value: raw(`{"max":3}`)}),
		UpsertFlag("ns", "bad-obj", FlagSpec{Type: TypeObject, Enabled: true, Value: raw(`{"max":"many"}`)}),
	)
	h := s.Namespace("ns")
	enabledTests := []struct {
		key  string
		def  bool
		want bool
	}{
		{"on", false, true}, {"off", true, false}, {"str", false, true}, {"str-off", true, false}, {"missing", true, true}, {"missing", false, false},
	}
	for _, tc := range enabledTests {
		t.Run("IsEnabled/"+tc.key, func(t *testing.T) {
			if got := h.IsEnabled(tc.key, Context{}, tc.def); got != tc.want {
				t.Fatalf("IsEnabled(%q, def=%v) = %v", tc.key, tc.def, got)
			}
		})
	}
	def := limits{Max: 1}
	configTests := []struct {
		key  string
		want limits
	}{
		{"obj", limits{Max: 3, Tags: []string{"a"}}}, {"obj-off", def}, {"bad-obj", def}, {"missing", def},
	}
	for _, tc := range configTests {
		t.Run("Config/"+tc.key, func(t *testing.T) {
			if got := Config(h, tc.key, Context{}, def); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Config(%q) = %+v, want %+v", tc.key, got, tc.want)
			}
		})
	}
	if got := Config(h, "str", Context{}, "def"); got != "x" {
		t.Fatalf("Config[string] = %q", got)
	}
}

func TestContextFromMap(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string]any
		want    Context
		wantErr string
	}{
		{
			name: "splits well-known and free attributes",
			in:   map[string]any{"targetingKey": "t", "userId": "u", "orgId": "o", "role": "r", "deviceId": "d", "deviceClass": "phone", "age": 3.0, "beta": true, "nil": nil},
			want: Context{TargetingKey: "t", UserID: "u", OrgID: "o", Role: "r", DeviceID: "d", DeviceClass: "phone",
				Attributes: map[string]any{"age": 3.0, "beta": true, "nil": nil}},
		},
		{name: "nil well-known is absent", in: map[string]any{"userId": nil}, want: Context{}},
		{name: "well-known must be a string", in: map[string]any{"userId": 5, "role": true}, wantErr: "context.role: must be a string, got bool\ncontext.userId: must be a string, got int"},
		{name: "free attribute type", in: map[string]any{"tags": []any{"a"}}, wantErr: "context.tags: unsupported attribute type []interface {} (want string, bool or number)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ContextFromMap(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if len(FieldErrors(err)) == 0 {
					t.Fatal("want field errors")
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	spec := boolFlag(true)
	spec.Rollout = &Rollout{Percentage: 50}
	mustApply(t, s,
		UpsertFlag("ns", "static", boolFlag(true)),
		UpsertFlag("ns", "rollout", spec),
		UpsertFlag("ns", "sched", FlagSpec{Type: TypeNumber, Value: raw(`1`), Schedule: []ScheduleStep{{At: t0, Enabled: ptr(true)}}}),
		UpsertFlag("ns", "rules", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"x"`), Rules: []Rule{
			{Name: "r", Match: []Condition{{Attribute: "email", Operator: OpMatches, Values: []string{`@corp\.com$`}}, {Attribute: "n", Operator: OpGreaterThan, Values: []string{"2"}}}},
		}}),
		UpsertOverride(expiring(userOverride("ns", "o", "alice", created, on("static")), later)),
	)
	h := s.Namespace("ns")
	ctx := Context{UserID: "alice", DeviceID: "d", Attributes: map[string]any{"email": "a@corp.com", "n": 3}}
	tests := []string{"static", "rollout", "sched", "rules", "missing"}
	for _, key := range tests {
		t.Run(key, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { h.Evaluate(ctx, key) }); n != 0 {
				t.Fatalf("%v allocations per Evaluate", n)
			}
		})
	}
}

func TestResultSourceKind(t *testing.T) {
	tests := []struct {
		res  Result
		want string
	}{
		{Result{Source: SourceDefault}, "default"},
		{Result{Source: SourceKillSwitch}, "kill-switch"},
		{Result{Source: SourceRoleGate}, "role-gate"},
		{Result{Source: SourceRollout}, "rollout"},
		{Result{Source: SourceAllowListUser}, "allow-list"},
		{Result{Source: SourceAllowListOrg}, "allow-list"},
		{Result{Source: SourceRulePrefix + "beta-testers"}, "rule"},
		{Result{Source: SourceSchedulePrefix + "2026-12-05T00:00:00Z"}, "schedule"},
		{Result{Source: SourceUserOverride + "shop/alice"}, "user-override"},
		{Result{Source: SourceDeviceOverride + "shop/tab-1"}, "device-override"},
		{Result{Source: SourceDefault, ErrorCode: ErrorParse}, "error"},
	}
	for _, tt := range tests {
		if got := tt.res.SourceKind(); got != tt.want {
			t.Errorf("SourceKind of %+v = %q, want %q", tt.res, got, tt.want)
		}
	}
}

func TestResultHidden(t *testing.T) {
	tests := []struct {
		res  Result
		want bool
	}{
		{Result{Source: SourceRoleGate, Reason: ReasonDisabled}, true},
		{Result{Source: SourceRoleGate, Reason: ReasonTargetingMatch}, false},
		{Result{Source: SourceKillSwitch, Reason: ReasonDisabled}, false},
		{Result{Source: SourceDefault, Reason: ReasonStatic}, false},
	}
	for _, tt := range tests {
		if got := tt.res.Hidden(); got != tt.want {
			t.Errorf("Hidden of %+v = %v, want %v", tt.res, got, tt.want)
		}
	}
}

// TestEvaluateAllMatchesEvaluate: evaluating every flag gives, flag by flag,
// what evaluating each flag alone gives, for subjects with no entries, a few
// (one naming no flag), more than subjectFlags resolves, and a device with a
// user.
func TestEvaluateAllMatchesEvaluate(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	var ops []Op
	key := func(i int) string { return fmt.Sprintf("f%02d", i) }
	for i := range 20 {
		ops = append(ops, UpsertFlag("ns", key(i), boolFlag(i%3 == 0)))
	}
	var many []OverrideEntry
	for i := range maxSubjectFlags + 4 {
		many = append(many, on(key(2*i%20)), off(key((2*i+1)%20)))
	}
	ops = append(ops,
		UpsertOverride(userOverride("ns", "few", "few", t0, on(key(1)), off(key(3)), on("no-such-flag"))),
		UpsertOverride(userOverride("ns", "many", "many", t0, many[:len(many)/2]...)),
		UpsertOverride(userOverride("ns", "many-2", "many", t0.Add(time.Second), many[len(many)/2:]...)),
		UpsertOverride(deviceOverride("ns", "dev", "d1", t0, off(key(0)), on(key(4)))),
	)
	mustApply(t, s, ops...)
	h := s.Namespace("ns")
	for _, ctx := range []Context{
		{UserID: "nobody"},
		{UserID: "few"},
		{UserID: "many"},
		{UserID: "few", DeviceID: "d1", DeviceClass: "phone"},
		{DeviceID: "d1", DeviceClass: "phone"},
	} {
		all := h.EvaluateAll(ctx)
		if len(all) != 20 {
			t.Fatalf("%+v: %d results, want 20", ctx, len(all))
		}
		overridden := 0
		for _, r := range all {
			if one := h.Evaluate(ctx, r.Key); !reflect.DeepEqual(r, one) {
				t.Errorf("%+v, %s: EvaluateAll gave %+v, Evaluate %+v", ctx, r.Key, r, one)
			}
			if strings.Contains(r.Source, "override") {
				overridden++
			}
		}
		if ctx.UserID != "nobody" && overridden == 0 {
			t.Errorf("%+v: no result decided by an override", ctx)
		}
	}
}
