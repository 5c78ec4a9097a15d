package evaluator

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func fl(ns, key string) FlagRef { return FlagRef{Namespace: ns, Key: key} }

func usr(ns, id, key string) SubjectChange {
	return SubjectChange{Namespace: ns, Kind: SubjectUser, SubjectID: id, Key: key}
}

func dev(ns, id, key string) SubjectChange {
	return SubjectChange{Namespace: ns, Kind: SubjectDevice, SubjectID: id, Key: key}
}

func checkChangeSet(t *testing.T, cs ChangeSet, flags []FlagRef, subjects []SubjectChange) {
	t.Helper()
	if !reflect.DeepEqual(cs.Flags, flags) {
		t.Errorf("flags = %v, want %v", cs.Flags, flags)
	}
	if !reflect.DeepEqual(cs.Subjects, subjects) {
		t.Errorf("subjects = %v, want %v", cs.Subjects, subjects)
	}
	if cs.Empty() != (len(flags) == 0 && len(subjects) == 0) {
		t.Errorf("Empty() = %v", cs.Empty())
	}
}

// TestChangeSets runs one store through a sequence of writes; every step
// asserts the exact change set.
func TestChangeSets(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	strFlag := func(schema string) FlagSpec {
		return FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"x"`), Schema: raw(schema)}
	}
	o1 := userOverride("ns", "o1", "alice", created, on("a"), val("b", `"x"`))
	o2 := userOverride("ns", "o2", "alice", created.Add(time.Minute), off("a"), on("c"))
	o3 := userOverride("ns", "o3", "bob", created, val("b", `"z"`))
	steps := []struct {
		name     string
		ops      []Op
		flags    []FlagRef
		subjects []SubjectChange
	}{
		{name: "flags created", ops: []Op{UpsertFlag("ns", "a", boolFlag(false)), UpsertFlag("ns", "b", strFlag(`{"enum":["x","y","z"]}`))},
			flags: []FlagRef{fl("ns", "a"), fl("ns", "b")}},
		{name: "override created lists all its pairs", ops: []Op{UpsertOverride(o1)},
			subjects: []SubjectChange{usr("ns", "alice", "a"), usr("ns", "alice", "b")}},
		{name: "override edit lists only the changed entry", ops: []Op{UpsertOverride(userOverride("ns", "o1", "alice", created, on("a"), val("b", `"y"`)))},
			subjects: []SubjectChange{usr("ns", "alice", "b")}},
		{name: "identical re-upsert lists nothing", ops: []Op{UpsertOverride(userOverride("ns", "o1", "alice", created, on("a"), val("b", `"y"`)))}},
		{name: "entry removed", ops: []Op{UpsertOverride(userOverride("ns", "o1", "alice", created, on("a")))},
			subjects: []SubjectChange{usr("ns", "alice", "b")}},
		{name: "entry added back", ops: []Op{UpsertOverride(userOverride("ns", "o1", "alice", created, on("a"), val("b", `"x"`)))},
			subjects: []SubjectChange{usr("ns", "alice", "b")}},
		{name: "losing and unknown-flag entries list nothing", ops: []Op{UpsertOverride(o2)}},
		{name: "editing a losing entry lists nothing", ops: []Op{UpsertOverride(userOverride("ns", "o2", "alice", created.Add(time.Minute), on("a"), on("c")))}},
		{name: "winner change lists the pair", ops: []Op{UpsertOverride(userOverride("ns", "o2", "alice", created.Add(-time.Minute), off("a"), on("c")))},
			subjects: []SubjectChange{usr("ns", "alice", "a")}},
		{name: "winner moves back", ops: []Op{UpsertOverride(o2)},
			subjects: []SubjectChange{usr("ns", "alice", "a")}},
		{name: "deleting the winner lists its pairs", ops: []Op{DeleteOverride(SubjectUser, "ns", "o1")},
			subjects: []SubjectChange{usr("ns", "alice", "a"), usr("ns", "alice", "b")}},
		{name: "new flag makes a waiting entry valid", ops: []Op{UpsertFlag("ns", "c", boolFlag(false))},
			flags: []FlagRef{fl("ns", "c")}, subjects: []SubjectChange{usr("ns", "alice", "c")}},
		{name: "another user's override", ops: []Op{UpsertOverride(o3)}, subjects: []SubjectChange{usr("ns", "bob", "b")}},
		{name: "schema change invalidates an entry", ops: []Op{UpsertFlag("ns", "b", strFlag(`{"enum":["x","y"]}`))},
			flags: []FlagRef{fl("ns", "b")}, subjects: []SubjectChange{usr("ns", "bob", "b")}},
		{name: "schema change validates it again", ops: []Op{UpsertFlag("ns", "b", strFlag(`{"enum":["x","z"]}`))},
			flags: []FlagRef{fl("ns", "b")}, subjects: []SubjectChange{usr("ns", "bob", "b")}},
		{name: "flag edit without type or schema change lists no pairs", ops: []Op{UpsertFlag("ns", "b", FlagSpec{Type: TypeString, Value: raw(`"z"`), Schema: raw(`{"enum":["x","z"]}`)})},
			flags: []FlagRef{fl("ns", "b")}},
		{name: "type change invalidates value entries only", ops: []Op{UpsertFlag("ns", "b", FlagSpec{Type: TypeNumber, Value: raw(`1`)})},
			flags: []FlagRef{fl("ns", "b")}, subjects: []SubjectChange{usr("ns", "bob", "b")}},
		{name: "flag deletion lists its pairs", ops: []Op{DeleteFlag("ns", "c")},
			flags: []FlagRef{fl("ns", "c")}, subjects: []SubjectChange{usr("ns", "alice", "c")}},
		{name: "deleting a missing flag lists nothing", ops: []Op{DeleteFlag("ns", "c")}},
		{name: "deleting a missing override lists nothing", ops: []Op{DeleteOverride(SubjectUser, "ns", "nope")}},
		{name: "broken flag invalidates entries", ops: []Op{UpsertFlag("ns", "a", FlagSpec{Type: "Broken"})},
			flags: []FlagRef{fl("ns", "a")}, subjects: []SubjectChange{usr("ns", "alice", "a")}},
		{name: "fixed flag validates them again", ops: []Op{UpsertFlag("ns", "a", boolFlag(false))},
			flags: []FlagRef{fl("ns", "a")}, subjects: []SubjectChange{usr("ns", "alice", "a")}},
		{name: "device override", ops: []Op{UpsertOverride(deviceOverride("ns", "d1", "phone-1", created, on("a")))},
			subjects: []SubjectChange{dev("ns", "phone-1", "a")}},
		{name: "disabling an override lists its effective pairs", ops: []Op{UpsertOverride(disabled(deviceOverride("ns", "d1", "phone-1", created, on("a"))))},
			subjects: []SubjectChange{dev("ns", "phone-1", "a")}},
		{name: "deleting a disabled override lists nothing", ops: []Op{DeleteOverride(SubjectDevice, "ns", "d1")}},
		{name: "reason change is observable", ops: []Op{UpsertOverride(Override{Kind: SubjectUser, SubjectID: "bob", Namespace: "ns", Name: "o3", UID: "uid-o3",
			CreatedAt: created, Enabled: true, Reason: "support ticket", Entries: []OverrideEntry{val("b", `1`), on("a")}})},
			subjects: []SubjectChange{usr("ns", "bob", "a"), usr("ns", "bob", "b")}},
		{name: "subject change lists old and new subject", ops: []Op{UpsertOverride(userOverride("ns", "o3", "carol", created, on("a")))},
			subjects: []SubjectChange{usr("ns", "bob", "a"), usr("ns", "bob", "b"), usr("ns", "carol", "a")}},
		{name: "namespaces are independent", ops: []Op{UpsertFlag("other", "a", boolFlag(true)), UpsertOverride(userOverride("other", "o", "alice", created, on("a")))},
			flags: []FlagRef{fl("other", "a")}, subjects: []SubjectChange{usr("other", "alice", "a")}},
		{name: "override and its flag in one batch", ops: []Op{UpsertOverride(userOverride("third", "o", "dave", created, on("n"))), UpsertFlag("third", "n", boolFlag(false))},
			flags: []FlagRef{fl("third", "n")}, subjects: []SubjectChange{usr("third", "dave", "n")}},
	}
	var rev uint64 = 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			snap, cs, err := s.Apply(st.ops...)
			if err != nil {
				t.Fatal(err)
			}
			rev++
			if snap.Revision() != rev || cs.Revision != rev || s.Snapshot() != snap {
				t.Fatalf("revision %d/%d, want %d", snap.Revision(), cs.Revision, rev)
			}
			checkChangeSet(t, cs, st.flags, st.subjects)
		})
	}
}

func TestTickAndDeadlines(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	expA, expB, step := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	mustApply(t, s,
		UpsertFlag("ns", "f", boolFlag(false)),
		UpsertFlag("ns", "g", FlagSpec{Type: TypeBoolean, Schedule: []ScheduleStep{{At: step, Enabled: ptr(true)}, {At: t0.Add(-time.Hour), Enabled: ptr(false)}}}),
		UpsertOverride(expiring(userOverride("ns", "a", "alice", created, on("f")), expA)),
		// b loses to a until a expires, then wins until it expires itself.
		UpsertOverride(expiring(userOverride("ns", "b", "alice", created.Add(time.Second), off("f")), expB)),
		// c loses to a and expires at the same instant: never observable.
		UpsertOverride(expiring(userOverride("ns", "c", "alice", created.Add(2*time.Second), on("f")), expA)),
	)
	h := s.Namespace("ns")
	alice := Context{UserID: "alice"}

	if d, ok := s.NextDeadline(); !ok || !d.Equal(expA) {
		t.Fatalf("next deadline = %v %v, want %v", d, ok, expA)
	}
	// Expiry is exact even before any tick.
	clk.Set(expA.Add(-time.Nanosecond))
	if r := h.Evaluate(alice, "f"); r.Source != "user-override:ns/a" {
		t.Fatalf("before expiry: %s", r)
	}
	clk.Set(expA)
	if r := h.Evaluate(alice, "f"); r.Source != "user-override:ns/b" || r.Enabled {
		t.Fatalf("at expiry: %s", r)
	}

	ticks := []struct {
		name     string
		at       time.Time
		flags    []FlagRef
		subjects []SubjectChange
		next     time.Time
	}{
		{name: "before the first expiry nothing changes", at: expA.Add(-time.Nanosecond), next: expA},
		{name: "winner expires", at: expA, subjects: []SubjectChange{usr("ns", "alice", "f")}, next: expB},
		{name: "same instant again", at: expA, next: expB},
		{name: "time going backwards is clamped", at: t0, next: expB},
		{name: "second expiry", at: expB, subjects: []SubjectChange{usr("ns", "alice", "f")}, next: step},
		{name: "schedule step", at: step.Add(time.Hour), flags: []FlagRef{fl("ns", "g")}},
	}
	for _, tc := range ticks {
		t.Run(tc.name, func(t *testing.T) {
			snap, cs := s.Tick(tc.at)
			checkChangeSet(t, cs, tc.flags, tc.subjects)
			if snap.AsOf().Before(tc.at) {
				t.Fatalf("snapshot as of %v, want at least %v", snap.AsOf(), tc.at)
			}
			d, ok := s.NextDeadline()
			if ok != !tc.next.IsZero() || !d.Equal(tc.next) {
				t.Fatalf("next deadline = %v %v, want %v", d, ok, tc.next)
			}
		})
	}
}

func TestApplyReportsExpiriesSinceLastWrite(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	exp := t0.Add(time.Minute)
	mustApply(t, s, UpsertFlag("ns", "f", boolFlag(false)), UpsertOverride(expiring(userOverride("ns", "a", "alice", created, on("f")), exp)))
	clk.Set(exp.Add(time.Second))
	// The override expired without a tick; deleting it now must still tell
	// subscribers that (alice, f) changed, and a later tick must not repeat it.
	cs := mustApply(t, s, DeleteOverride(SubjectUser, "ns", "a"))
	checkChangeSet(t, cs, nil, []SubjectChange{usr("ns", "alice", "f")})
	_, cs = s.Tick(exp.Add(time.Hour))
	checkChangeSet(t, cs, nil, nil)
	if _, ok := s.NextDeadline(); ok {
		t.Fatal("no deadline expected")
	}
}

func TestReupsertReplacesDeadline(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	first, second := t0.Add(time.Minute), t0.Add(time.Hour)
	mustApply(t, s, UpsertFlag("ns", "f", boolFlag(false)), UpsertOverride(expiring(userOverride("ns", "a", "alice", created, on("f")), first)))
	cs := mustApply(t, s, UpsertOverride(expiring(userOverride("ns", "a", "alice", created, on("f")), second)))
	checkChangeSet(t, cs, nil, []SubjectChange{usr("ns", "alice", "f")}) // expiry is observable
	if d, _ := s.NextDeadline(); !d.Equal(second) {
		t.Fatalf("stale deadline %v", d)
	}
	_, cs = s.Tick(first)
	checkChangeSet(t, cs, nil, nil)
	_, cs = s.Tick(second)
	checkChangeSet(t, cs, nil, []SubjectChange{usr("ns", "alice", "f")})
	// Already expired on arrival: no deadline, nothing served.
	clk.Set(second.Add(time.Hour))
	mustApply(t, s, UpsertOverride(expiring(userOverride("ns", "late", "bob", created, on("f")), second)))
	if _, ok := s.NextDeadline(); ok {
		t.Fatal("expired-on-arrival override must not add a deadline")
	}
	if s.Namespace("ns").HasUserOverride("bob", "f") {
		t.Fatal("expired override applies")
	}
}

func TestDeadlineHeapCompacts(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "f", boolFlag(false)))
	for i := range 3 * minCompact {
		o := expiring(userOverride("ns", "o", "alice", created, on("f")), t0.Add(time.Duration(i+1)*time.Hour))
		mustApply(t, s, UpsertOverride(o))
	}
	s.mu.Lock()
	n := len(s.deadlines)
	s.mu.Unlock()
	if n >= 2*minCompact {
		t.Fatalf("deadline heap holds %d entries for 1 live deadline", n)
	}
	if d, ok := s.NextDeadline(); !ok || !d.Equal(t0.Add(3*minCompact*time.Hour)) {
		t.Fatalf("next deadline = %v", d)
	}
}

func TestApplyRejectsMalformedOps(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	tests := []struct {
		name string
		op   Op
		want string
	}{
		{"flag without namespace", UpsertFlag("", "f", boolFlag(true)), "ops[0].namespace: must not be empty"},
		{"flag without key", UpsertFlag("ns", "", boolFlag(true)), "ops[0].key: must not be empty"},
		{"nil compiled flag", UpsertCompiledFlag("ns", nil), "ops[0].key: must not be empty"},
		{"delete flag without key", DeleteFlag("ns", ""), "ops[0].key: must not be empty"},
		{"override without name", UpsertOverride(Override{Namespace: "ns", Kind: SubjectUser, SubjectID: "a"}), "ops[0].name: must not be empty"},
		{"override without subject", UpsertOverride(Override{Namespace: "ns", Name: "o", Kind: SubjectUser}), "ops[0].subjectId: must not be empty"},
		{"override with unknown kind", UpsertOverride(Override{Namespace: "ns", Name: "o", Kind: "team", SubjectID: "a"}), `ops[0].kind: unknown subject kind "team"`},
		{"delete override without name", DeleteOverride(SubjectUser, "ns", ""), "ops[0].name: must not be empty"},
		{"zero op", Op{}, "ops[0]: unknown operation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Snapshot()
			snap, cs, err := s.Apply(UpsertFlag("ns", "ok", boolFlag(true)), tc.op)
			if err == nil || !errors.Is(err, ErrInvalidOp) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), strings.Replace(tc.want, "ops[0]", "ops[1]", 1)) {
				t.Fatalf("err = %q, want %q", err, tc.want)
			}
			if snap != before || !cs.Empty() || s.Snapshot() != before {
				t.Fatal("a rejected batch must not change the store")
			}
		})
	}
}

func TestOverrideStatusAndConflicts(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	mustApply(t, s,
		UpsertFlag("ns", "f", FlagSpec{Type: TypeNumber, Enabled: true, Value: raw(`1`), Schema: raw(`{"minimum":0}`)}),
		UpsertFlag("ns", "g", boolFlag(true)),
		UpsertOverride(userOverride("ns", "old", "alice", created, val("f", `5`), on("g"))),
		UpsertOverride(userOverride("ns", "new", "alice", created.Add(time.Hour), val("f", `6`), val("g", `"yes"`), val("f", `7`), on("ghost"), val("h", `-1`))),
		UpsertOverride(expiring(userOverride("ns", "gone", "alice", created.Add(-time.Hour), on("g")), t0)),
		UpsertOverride(disabled(userOverride("ns", "off", "alice", created.Add(-time.Hour), on("f")))),
	)
	snap := s.Snapshot()
	tests := []struct {
		name string
		obj  string
		want OverrideStatus
	}{
		{name: "winner", obj: "old", want: OverrideStatus{Applied: []string{"f", "g"}}},
		{name: "loser with invalid entries", obj: "new", want: OverrideStatus{
			Invalid: []EntryError{
				{Key: "g", Message: "boolean flag needs a json boolean, got string"},
				{Key: "ghost", Message: "unknown flag"},
				{Key: "h", Message: "unknown flag"},
				{Key: "f", Message: "duplicate entry for this key; the first one is used"},
			},
			Lost: []LostEntry{{Key: "f", Winner: ObjectRef{Kind: SubjectUser, Namespace: "ns", Name: "old", UID: "uid-old"}}},
		}},
		{name: "expired", obj: "gone", want: OverrideStatus{Expired: true}},
		{name: "disabled", obj: "off", want: OverrideStatus{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := snap.OverrideStatus(SubjectUser, "ns", tc.obj)
			if !ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("status = %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, ok := snap.OverrideStatus(SubjectUser, "ns", "missing"); ok {
		t.Fatal("missing object has a status")
	}
	if _, ok := snap.OverrideStatus(SubjectUser, "missing", "old"); ok {
		t.Fatal("missing namespace has a status")
	}
	want := []Conflict{{Kind: SubjectUser, SubjectID: "alice", Key: "f",
		Winner: ObjectRef{Kind: SubjectUser, Namespace: "ns", Name: "old", UID: "uid-old"}, Loser: ObjectRef{Kind: SubjectUser, Namespace: "ns", Name: "new", UID: "uid-new"}}}
	if got := snap.Conflicts("ns"); !reflect.DeepEqual(got, want) {
		t.Fatalf("conflicts = %+v", got)
	}
	if got := snap.Conflicts("missing"); got != nil {
		t.Fatalf("conflicts in a missing namespace: %v", got)
	}
	// A schema change that makes the winner invalid hands the pair to the
	// loser and is reported both in the change set and in the status.
	cs := mustApply(t, s, UpsertFlag("ns", "f", FlagSpec{Type: TypeNumber, Enabled: true, Value: raw(`6`), Schema: raw(`{"minimum":6}`)}))
	checkChangeSet(t, cs, []FlagRef{fl("ns", "f")}, []SubjectChange{usr("ns", "alice", "f")})
	st, _ := s.Snapshot().OverrideStatus(SubjectUser, "ns", "new")
	if !reflect.DeepEqual(st.Applied, []string{"f"}) || len(st.Lost) != 0 {
		t.Fatalf("status after schema change: %+v", st)
	}
	if len(s.Snapshot().Conflicts("ns")) != 0 {
		t.Fatal("no conflicts expected")
	}
}

func TestUserOverrides(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	exp := t0.Add(time.Hour)
	o := expiring(userOverride("ns", "support", "alice", created, val("limit", `5`), off("beta")), exp)
	o.Reason = "ticket 42"
	mustApply(t, s,
		UpsertFlag("ns", "limit", FlagSpec{Type: TypeNumber, Enabled: true, Value: raw(`1`)}),
		UpsertFlag("ns", "beta", boolFlag(true)),
		UpsertFlag("ns", "new-ui", boolFlag(false)),
		UpsertOverride(o),
		UpsertOverride(userOverride("ns", "later", "alice", created.Add(time.Hour), on("new-ui"), on("limit"))),
		UpsertOverride(deviceOverride("ns", "dev", "phone-1", created, on("new-ui"))),
	)
	h := s.Namespace("ns")
	got := h.UserOverrides("alice")
	want := []OverrideInfo{
		{Key: "beta", Kind: SubjectUser, SubjectID: "alice", Source: "user-override:ns/support", Object: ObjectRef{SubjectUser, "ns", "support", "uid-support"},
			CreatedAt: created, ExpiresAt: &exp, Reason: "ticket 42", Mode: "off"},
		{Key: "limit", Kind: SubjectUser, SubjectID: "alice", Source: "user-override:ns/support", Object: ObjectRef{SubjectUser, "ns", "support", "uid-support"},
			CreatedAt: created, ExpiresAt: &exp, Reason: "ticket 42", Mode: "value", Value: raw(`5`)},
		{Key: "new-ui", Kind: SubjectUser, SubjectID: "alice", Source: "user-override:ns/later", Object: ObjectRef{SubjectUser, "ns", "later", "uid-later"},
			CreatedAt: created.Add(time.Hour), Mode: "on"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("UserOverrides =\n%+v\nwant\n%+v", got, want)
	}
	if info, ok := h.UserOverride("alice", "limit"); !ok || info.Object.Name != "support" {
		t.Fatalf("UserOverride = %+v %v", info, ok)
	}
	if !h.HasUserOverride("alice", "beta") || h.HasUserOverride("alice", "missing") || h.HasUserOverride("bob", "beta") {
		t.Fatal("HasUserOverride")
	}
	if d := h.DeviceOverrides("phone-1"); len(d) != 1 || d[0].Key != "new-ui" || d[0].Kind != SubjectDevice {
		t.Fatalf("DeviceOverrides = %+v", d)
	}
	if info, ok := h.DeviceOverride("phone-1", "new-ui"); !ok || info.Object.Name != "dev" || info.Kind != SubjectDevice {
		t.Fatalf("DeviceOverride = %+v %v", info, ok)
	}
	if _, ok := h.DeviceOverride("phone-1", "beta"); ok {
		t.Fatal("DeviceOverride for a key without an override")
	}
	if _, ok := h.DeviceOverride("alice", "new-ui"); ok {
		t.Fatal("DeviceOverride of a user's override")
	}
	// At expiry the support override stops applying and the later one
	// takes over limit.
	clk.Set(exp)
	got = h.UserOverrides("alice")
	if len(got) != 2 || got[0].Key != "limit" || got[0].Object.Name != "later" || got[1].Key != "new-ui" {
		t.Fatalf("after expiry: %+v", got)
	}
	if h.HasUserOverride("alice", "beta") {
		t.Fatal("expired override still reported")
	}
	if s.Namespace("missing").UserOverrides("alice") != nil || h.UserOverrides("") != nil || h.UserOverrides("nobody") != nil {
		t.Fatal("expected no overrides")
	}
	if _, ok := s.Namespace("missing").UserOverride("alice", "beta"); ok {
		t.Fatal("missing namespace")
	}
}

// TestWriteCopiesOnlyTouchedShards checks the structural sharing that keeps
// writes O(shard) and published snapshots immutable.
func TestWriteCopiesOnlyTouchedShards(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	ops := []Op{UpsertFlag("ns", "f", boolFlag(false)), UpsertFlag("other", "f", boolFlag(false))}
	for i := range 20_000 {
		ops = append(ops, UpsertOverride(userOverride("ns", "o-"+strconv.Itoa(i), "user-"+strconv.Itoa(i), created, on("f"))))
	}
	mustApply(t, s, ops...)
	before := s.Snapshot()
	oldNS := before.nss["ns"]
	mustApply(t, s, UpsertOverride(userOverride("ns", "o-7", "user-7", created, off("f"))))
	after := s.Snapshot()
	newNS := after.nss["ns"]
	if after.nss["other"] != before.nss["other"] {
		t.Fatal("untouched namespace was copied")
	}
	if !reflect.DeepEqual(newNS.flags, oldNS.flags) || len(newNS.flagList) != 1 || &newNS.flagList[0] != &oldNS.flagList[0] {
		t.Fatal("flags were copied by an override write")
	}
	countDiff := func(a, b func(int) any) (n int) {
		for i := range numShards {
			if a(i) != b(i) {
				n++
			}
		}
		return n
	}
	objDiff := countDiff(func(i int) any { return oldNS.objs.get(i) }, func(i int) any { return newNS.objs.get(i) })
	subjDiff := countDiff(func(i int) any { return oldNS.users.get(i) }, func(i int) any { return newNS.users.get(i) })
	if countDiff(func(i int) any { return oldNS.devices.get(i) }, func(i int) any { return newNS.devices.get(i) }) != 0 {
		t.Fatal("device shards were copied by a user override write")
	}
	if objDiff != 1 || subjDiff != 1 {
		t.Fatalf("copied %d object shards and %d subject shards, want 1 and 1", objDiff, subjDiff)
	}
	// The old snapshot still serves the old state.
	if r := before.Namespace("ns").Evaluate(Context{UserID: "user-7"}, "f"); !r.Enabled {
		t.Fatalf("old snapshot changed: %s", r)
	}
	if r := after.Namespace("ns").Evaluate(Context{UserID: "user-7"}, "f"); r.Enabled {
		t.Fatalf("new snapshot: %s", r)
	}
}

func TestEmptyNamespaceIsDropped(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "f", boolFlag(true)), UpsertOverride(userOverride("ns", "o", "a", created, on("f"))), UpsertFlag("keep", "f", boolFlag(true)))
	if got := s.Snapshot().Namespaces(); !reflect.DeepEqual(got, []string{"keep", "ns"}) {
		t.Fatalf("namespaces = %v", got)
	}
	cs := mustApply(t, s, DeleteFlag("ns", "f"), DeleteOverride(SubjectUser, "ns", "o"))
	checkChangeSet(t, cs, []FlagRef{fl("ns", "f")}, []SubjectChange{usr("ns", "a", "f")})
	if got := s.Snapshot().Namespaces(); !reflect.DeepEqual(got, []string{"keep"}) {
		t.Fatalf("namespaces = %v", got)
	}
	h := s.Namespace("ns")
	if h.Name() != "ns" || h.Revision() != 2 || h.Keys() != nil {
		t.Fatalf("handle %q rev %d keys %v", h.Name(), h.Revision(), h.Keys())
	}
	if (Namespace{}).Revision() != 0 {
		t.Fatal("zero handle revision")
	}
	if f, ok := s.Snapshot().Flag("keep", "f"); !ok || f.Key() != "f" {
		t.Fatal("Flag lookup")
	}
	if _, ok := s.Snapshot().Flag("ns", "f"); ok {
		t.Fatal("deleted flag still present")
	}
}

func TestStoreUsesSystemClockByDefault(t *testing.T) {
	s := NewStore(WithClock(nil))
	before := time.Now()
	snap, _, err := s.Apply(UpsertFlag("ns", "f", boolFlag(true)))
	if err != nil {
		t.Fatal(err)
	}
	if snap.AsOf().Before(before) {
		t.Fatalf("as of %v, before %v", snap.AsOf(), before)
	}
	tr := s.Namespace("ns").Explain("f", Context{})
	if tr.At.Before(before) {
		t.Fatalf("explain at %v", tr.At)
	}
	fixed := ClockFunc(func() time.Time { return t0 })
	if NewStore(WithClock(fixed)).Snapshot().AsOf() != t0 {
		t.Fatal("ClockFunc not used")
	}
}

func TestLargeOverrideObject(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	var ops []Op
	var entries []OverrideEntry
	for i := range 70 {
		key := "k" + strconv.Itoa(i)
		ops = append(ops, UpsertFlag("ns", key, boolFlag(false)))
		entries = append(entries, on(key))
	}
	entries = append(entries, off("k5"))
	ops = append(ops, UpsertOverride(userOverride("ns", "big", "alice", created, entries...)))
	cs := mustApply(t, s, ops...)
	if len(cs.Subjects) != 70 {
		t.Fatalf("%d pairs changed, want 70", len(cs.Subjects))
	}
	st, _ := s.Snapshot().OverrideStatus(SubjectUser, "ns", "big")
	if len(st.Applied) != 70 || len(st.Invalid) != 1 || st.Invalid[0].Key != "k5" || st.Invalid[0].Message != MessageDuplicateKey {
		t.Fatalf("status = %+v", st)
	}
	if r := s.Evaluate("ns", Context{UserID: "alice"}, "k5"); !r.Enabled {
		t.Fatalf("the first entry for a key must win: %s", r)
	}
}

func TestOverrideWithoutEntries(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	cs := mustApply(t, s, UpsertFlag("ns", "f", boolFlag(false)), UpsertOverride(userOverride("ns", "empty", "alice", created)))
	checkChangeSet(t, cs, []FlagRef{fl("ns", "f")}, nil)
	cs = mustApply(t, s, UpsertOverride(userOverride("ns", "empty", "alice", created, on("f"))))
	checkChangeSet(t, cs, nil, []SubjectChange{usr("ns", "alice", "f")})
	cs = mustApply(t, s, UpsertOverride(userOverride("ns", "empty", "alice", created)))
	checkChangeSet(t, cs, nil, []SubjectChange{usr("ns", "alice", "f")})
	mustApply(t, s, DeleteOverride(SubjectUser, "ns", "empty"))
	st := s.Snapshot().nss["ns"]
	if st.numObjs != 0 || st.subject(subjKey{SubjectUser, "alice"}) != nil {
		t.Fatalf("subject index not cleaned up: %d objects", st.numObjs)
	}
}

func TestUserAndDeviceOverridesWithTheSameName(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	cs := mustApply(t, s,
		UpsertFlag("ns", "f", FlagSpec{Type: TypeString, Enabled: true, Value: raw(`"on"`)}),
		UpsertOverride(userOverride("ns", "same", "alice", created, val("f", `"user"`))),
		UpsertOverride(deviceOverride("ns", "same", "phone-1", created, val("f", `"device"`))),
	)
	checkChangeSet(t, cs, []FlagRef{fl("ns", "f")}, []SubjectChange{dev("ns", "phone-1", "f"), usr("ns", "alice", "f")})
	h := s.Namespace("ns")
	tests := []struct {
		name string
		ctx  Context
		want string
	}{
		{"user", Context{UserID: "alice"}, `"user"`},
		{"device", Context{DeviceID: "phone-1", DeviceClass: "phone"}, `"device"`},
	}
	for _, tc := range tests {
		if r := h.Evaluate(tc.ctx, "f"); string(r.Raw) != tc.want {
			t.Fatalf("%s: %s", tc.name, r)
		}
	}
	for _, kind := range []SubjectKind{SubjectUser, SubjectDevice} {
		if st, ok := s.Snapshot().OverrideStatus(kind, "ns", "same"); !ok || len(st.Applied) != 1 {
			t.Fatalf("%s status: %+v %v", kind, st, ok)
		}
	}
	cs = mustApply(t, s, DeleteOverride(SubjectDevice, "ns", "same"))
	checkChangeSet(t, cs, nil, []SubjectChange{dev("ns", "phone-1", "f")})
	if r := h.Evaluate(Context{UserID: "alice"}, "f"); string(r.Raw) != `"user"` {
		t.Fatalf("old handle: %s", r)
	}
	if r := s.Evaluate("ns", Context{UserID: "alice", DeviceID: "phone-1", DeviceClass: "phone"}, "f"); string(r.Raw) != `"user"` {
		t.Fatalf("user override must survive the device override's deletion: %s", r)
	}
	if _, _, err := s.Apply(DeleteOverride("team", "ns", "same")); err == nil || !errors.Is(err, ErrInvalidOp) {
		t.Fatalf("delete with unknown kind: %v", err)
	}
}
