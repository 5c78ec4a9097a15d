package evaluator

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestChangeSetListsOverrideObjects(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "a", boolFlag(false)))
	o1 := userOverride("ns", "o1", "alice", created, on("a"))
	o2 := userOverride("ns", "o2", "alice", created.Add(time.Minute), off("a"))
	ref := func(kind SubjectKind, ns, name string) ObjectRef {
		return ObjectRef{Kind: kind, Namespace: ns, Name: name}
	}
	steps := []struct {
		name string
		ops  []Op
		want []ObjectRef
	}{
		{"created", []Op{UpsertOverride(o1)}, []ObjectRef{ref(SubjectUser, "ns", "o1")}},
		{"a losing object, which changes no result", []Op{UpsertOverride(o2)}, []ObjectRef{ref(SubjectUser, "ns", "o2")}},
		{"identical re-upsert", []Op{UpsertOverride(o1)}, []ObjectRef{ref(SubjectUser, "ns", "o1")}},
		{"sorted by namespace, kind, name", []Op{
			UpsertOverride(userOverride("zz", "b", "bob", created, on("a"))),
			UpsertOverride(deviceOverride("ns", "d", "phone", created, on("a"))),
			DeleteOverride(SubjectUser, "ns", "o2"),
			UpsertOverride(userOverride("ns", "o3", "carol", created, on("a"))),
		}, []ObjectRef{ref(SubjectDevice, "ns", "d"), ref(SubjectUser, "ns", "o2"), ref(SubjectUser, "ns", "o3"), ref(SubjectUser, "zz", "b")}},
		{"deleting a missing object", []Op{DeleteOverride(SubjectUser, "ns", "nope")}, nil},
		{"flags only", []Op{UpsertFlag("ns", "b", boolFlag(true))}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cs := mustApply(t, s, st.ops...)
			if !reflect.DeepEqual(cs.Overrides, st.want) {
				t.Fatalf("Overrides = %v, want %v", cs.Overrides, st.want)
			}
		})
	}
}

// TestExportReproducesEvaluations copies a namespace through FlagSpecs and
// Overrides, as JSON (the sync stream's form), into another store and
// checks that both evaluate every context alike, also after the clock
// passes an expiry and a schedule step.
func TestExportReproducesEvaluations(t *testing.T) {
	clk := newFakeClock(t0)
	src := NewStore(WithClock(clk))
	exp := t0.Add(time.Hour)
	mustApply(t, src,
		UpsertFlag("ns", "bool", FlagSpec{Type: TypeBoolean, Enabled: true,
			Rules:    []Rule{{Name: "beta", Match: []Condition{{Attribute: "orgId", Operator: OpIn, Values: []string{"acme"}}}}},
			Rollout:  &Rollout{Percentage: 50},
			Schedule: []ScheduleStep{{At: t0.Add(2 * time.Hour), RolloutPercentage: ptr(int32(100))}}}),
		UpsertFlag("ns", "str", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"x"`), OffValue: raw(`"off"`),
			Schema: raw(`{"enum":["x","y","z","off"]}`), AllowList: &AllowList{Users: []string{"vip"}}}),
		UpsertFlag("ns", "admin", FlagSpec{Type: TypeBoolean, Enabled: true, AllowedRoles: []string{"admin"}}),
		UpsertFlag("ns", "obj", FlagSpec{Type: TypeObject, Enabled: false, Value: raw(`{"n":1}`), OffValue: raw(`{"n":0}`),
			DeviceClasses: []string{"tablet"}}),
		UpsertFlag("ns", "broken", FlagSpec{Type: "Broken"}),
		UpsertOverride(Override{Kind: SubjectUser, SubjectID: "alice", Namespace: "ns", Name: "alice", UID: "u1",
			CreatedAt: created, Enabled: true, ExpiresAt: &exp, Reason: "pilot",
			Entries: []OverrideEntry{val("str", `"y"`), off("bool"), on("obj"), val("str", `"z"`), val("admin", `"not a bool"`)}}),
		UpsertOverride(userOverride("ns", "alice-older", "alice", created.Add(-time.Minute), val("obj", `{"n":7}`))),
		UpsertOverride(disabled(userOverride("ns", "bob-off", "bob", created, on("bool")))),
		UpsertOverride(deviceOverride("ns", "tab", "tab-1", created, val("obj", `{"n":9}`), on("missing"))),
	)
	srcNS := src.Namespace("ns")

	wire, err := json.Marshal(srcNS.Data())
	if err != nil {
		t.Fatal(err)
	}
	var got NamespaceData
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "ns" || len(got.Flags) != 5 || len(got.Overrides) != 4 {
		t.Fatalf("exported %q: %d flags and %d overrides, want ns: 5 and 4", got.Namespace, len(got.Flags), len(got.Overrides))
	}
	dst := NewStore(WithClock(clk))
	mustApply(t, dst, UpsertFlag("elsewhere", "x", boolFlag(true)), UpsertFlag("ns", "stale", boolFlag(true)),
		UpsertOverride(userOverride("ns", "gone", "alice", created, on("str"))))
	mustApply(t, dst, got.Ops(dst.Snapshot())...)
	if ns := dst.Snapshot().Namespaces(); !slices.Equal(ns, []string{"ns"}) {
		t.Fatalf("the copy holds namespaces %v, want ns alone", ns)
	}
	if ops := got.Ops(dst.Snapshot()); len(ops) != 0 {
		t.Fatalf("the copy holds the data, but Ops returns %d writes", len(ops))
	}

	contexts := []Context{
		{UserID: "alice"}, {UserID: "alice", Role: "admin"}, {UserID: "bob"}, {UserID: "vip"},
		{UserID: "carol", OrgID: "acme"}, {TargetingKey: "t-17"}, {UserID: "u-3"},
		{UserID: "alice", DeviceID: "tab-1", DeviceClass: "tablet"}, {DeviceID: "tab-1", DeviceClass: "phone"}, {},
	}
	compare := func(when string) {
		t.Helper()
		for _, c := range contexts {
			for _, key := range []string{"bool", "str", "admin", "obj", "broken", "missing"} {
				a, b := src.Evaluate("ns", c, key), dst.Evaluate("ns", c, key)
				if !reflect.DeepEqual(a, b) {
					t.Errorf("%s: %s for %+v: source %+v, copy %+v", when, key, c, a, b)
				}
			}
		}
	}
	compare("now")
	clk.Add(90 * time.Minute) // alice's override expired
	compare("after the expiry")
	clk.Add(time.Hour) // the rollout step
	compare("after the schedule step")
}

func TestExportLookups(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	spec := FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"v"`)}
	mustApply(t, s, UpsertFlag("ns", "f", spec), UpsertFlag("ns", "bad", FlagSpec{Type: "Nope"}),
		UpsertOverride(userOverride("ns", "o", "alice", created, off("f"), on("bad"), val("f", `"dup"`))))
	compiled, err := Compile("c", FlagSpec{Type: TypeBoolean, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, UpsertCompiledFlag("ns", compiled))
	n := s.Namespace("ns")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"spec of a flag", first(n.FlagSpec("f")), spec},
		{"spec of a flag that did not compile", first(n.FlagSpec("bad")), FlagSpec{Type: "Nope"}},
		{"spec of a compiled flag", first(n.FlagSpec("c")), FlagSpec{Type: TypeBoolean, Enabled: true}},
		{"missing flag", second(n.FlagSpec("nope")), false},
		{"missing namespace", second(s.Namespace("none").FlagSpec("f")), false},
		{"specs of an empty namespace", len(s.Namespace("none").FlagSpecs()), 0},
		{"override as kept", first(n.Override(SubjectUser, "o")),
			userOverride("ns", "o", "alice", created, off("f"), OverrideEntry{Key: "bad"})},
		{"override of the other kind", second(n.Override(SubjectDevice, "o")), false},
		{"overrides of an empty namespace", len(s.Namespace("none").Overrides()), 0},
		{"override of an empty namespace", second(s.Namespace("none").Override(SubjectUser, "o")), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Fatalf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
}

func first[A, B any](a A, _ B) A  { return a }
func second[A, B any](_ A, b B) B { return b }

func TestNamespaceChangesOps(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)), UpsertFlag("ns", "b", boolFlag(true)),
		UpsertOverride(userOverride("ns", "o", "alice", created, off("a"))))
	c := NamespaceChanges{
		Flags:            map[string]FlagSpec{"c": boolFlag(false)},
		DeletedFlags:     []string{"b"},
		Overrides:        []Override{userOverride("other", "p", "bob", created, off("c"))}, // its namespace is ns's
		DeletedOverrides: []ObjectName{{Kind: SubjectUser, Name: "o"}},
	}
	mustApply(t, s, c.Ops("ns")...)
	n := s.Namespace("ns")
	if got := n.Keys(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("flags %v, want a and c", got)
	}
	if _, ok := n.Override(SubjectUser, "o"); ok {
		t.Error("override o was not deleted")
	}
	if o, ok := n.Override(SubjectUser, "p"); !ok || o.Namespace != "ns" {
		t.Errorf("override p: %+v, %v; want it in ns", o, ok)
	}
}
