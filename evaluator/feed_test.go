package evaluator

import (
	"reflect"
	"testing"
	"time"
)

func revisions(css []ChangeSet) []uint64 {
	out := make([]uint64, len(css))
	for i, cs := range css {
		out[i] = cs.Revision
	}
	return out
}

func TestChangesDeliversInOrder(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	css, wake, ok := s.Changes(0)
	if !ok || len(css) != 0 {
		t.Fatalf("Changes(0) on empty store = %v, %v", css, ok)
	}
	cs1 := mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)))
	select {
	case <-wake:
	default:
		t.Fatal("channel not closed by Apply")
	}
	cs2 := mustApply(t, s, UpsertOverride(userOverride("ns", "o1", "alice", created, on("a"))))
	_, cs3 := s.Tick(clk.Now()) // empty change sets are published too
	if !cs3.Empty() {
		t.Fatalf("tick change set = %+v, want empty", cs3)
	}
	got, _, ok := s.Changes(0)
	if !ok {
		t.Fatal("Changes(0): ok false")
	}
	if want := []ChangeSet{cs1, cs2, cs3}; !reflect.DeepEqual(got, want) {
		t.Errorf("Changes(0) = %+v, want %+v", got, want)
	}
	got, _, _ = s.Changes(1)
	if want := []ChangeSet{cs2, cs3}; !reflect.DeepEqual(got, want) {
		t.Errorf("Changes(1) = %+v, want %+v", got, want)
	}
	if got, _, ok := s.Changes(3); !ok || len(got) != 0 {
		t.Errorf("Changes(current) = %v, %v; want none, true", got, ok)
	}
	if got, _, ok := s.Changes(10); !ok || len(got) != 0 {
		t.Errorf("Changes(future) = %v, %v; want none, true", got, ok)
	}
	// A rejected batch publishes nothing.
	if _, _, err := s.Apply(DeleteFlag("", "a")); err == nil {
		t.Fatal("malformed op accepted")
	}
	if got, _, _ := s.Changes(0); len(got) != 3 {
		t.Errorf("after rejected batch: %d change sets, want 3", len(got))
	}
}

func TestChangesHistoryOverflow(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)), WithChangeHistory(3))
	for range 5 {
		mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)))
	}
	for since, want := range map[uint64][]uint64{2: {3, 4, 5}, 3: {4, 5}, 4: {5}, 5: {}} {
		got, _, ok := s.Changes(since)
		if !ok || !reflect.DeepEqual(revisions(got), want) {
			t.Errorf("Changes(%d) = %v, %v; want %v, true", since, revisions(got), ok, want)
		}
	}
	for _, since := range []uint64{0, 1} {
		if got, _, ok := s.Changes(since); ok || got != nil {
			t.Errorf("Changes(%d) = %v, %v; want nil, false", since, got, ok)
		}
	}
	if got, _, ok := NewStore(WithChangeHistory(0)).Changes(0); !ok || got != nil {
		t.Errorf("history 0 (clamped to 1): %v, %v", got, ok)
	}
}

func TestChangesWakesWaiters(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	_, wake, _ := s.Changes(0)
	got := make(chan []ChangeSet)
	go func() {
		<-wake
		css, _, _ := s.Changes(0)
		got <- css
	}()
	select {
	case <-wake:
		t.Fatal("woken before any write")
	default:
	}
	mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)))
	select {
	case css := <-got:
		if !reflect.DeepEqual(revisions(css), []uint64{1}) {
			t.Errorf("waiter saw %v, want [1]", revisions(css))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken")
	}
	_, wake2, _ := s.Changes(1)
	if wake2 == wake {
		t.Fatal("same channel after publish")
	}
	clk.Add(time.Second)
	s.Tick(clk.Now())
	select {
	case <-wake2:
	default:
		t.Error("Tick did not wake")
	}
}

func TestEligibleDeviceClass(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s,
		UpsertFlag("ns", "a", boolFlag(true)),
		UpsertFlag("ns", "b", FlagSpec{Type: TypeBoolean, DeviceClasses: []string{"charger"}}),
		UpsertFlag("other", "a", boolFlag(true)),
		UpsertFlag("bad", "x", FlagSpec{Type: "nope", DeviceClasses: []string{"watch"}}),
	)
	for _, tc := range []struct {
		ns, class string
		want      bool
	}{
		{"ns", "phone", true}, {"ns", "charger", true}, {"ns", "", true}, {"ns", "watch", false},
		{"other", "charger", false}, {"other", "laptop", true},
		{"bad", "watch", false}, {"missing", "phone", false}, {"missing", "", true},
	} {
		if got := s.Namespace(tc.ns).EligibleDeviceClass(tc.class); got != tc.want {
			t.Errorf("%s: EligibleDeviceClass(%q) = %v, want %v", tc.ns, tc.class, got, tc.want)
		}
	}
	f, ok := s.Snapshot().Flag("ns", "b")
	if !ok || !reflect.DeepEqual(f.DeviceClasses(), []string{"charger"}) {
		t.Errorf("DeviceClasses = %v", f.DeviceClasses())
	}
	f, _ = s.Snapshot().Flag("ns", "a")
	if !reflect.DeepEqual(f.DeviceClasses(), DefaultDeviceClasses) {
		t.Errorf("default DeviceClasses = %v", f.DeviceClasses())
	}
}

// TestChangesConsistentWithSnapshot checks the follower protocol: a
// snapshot loaded before Changes is never ahead of the returned change sets.
func TestChangesConsistentWithSnapshot(t *testing.T) {
	const writes = 2000
	s := NewStore(WithClock(newFakeClock(t0)), WithChangeHistory(writes))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range writes {
			if _, _, err := s.Apply(UpsertFlag("ns", "a", boolFlag(true))); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for checking := true; checking; {
		select {
		case <-done:
			checking = false
		default:
		}
		rev := s.Snapshot().Revision()
		css, _, ok := s.Changes(0)
		if !ok {
			t.Fatal("history lost")
		}
		if uint64(len(css)) < rev {
			t.Fatalf("snapshot at %d, but only %d change sets", rev, len(css))
		}
		for i, cs := range css {
			if cs.Revision != uint64(i+1) {
				t.Fatalf("change set %d has revision %d", i, cs.Revision)
			}
		}
	}
}

// TestLargeChangeSetNotRetained: a change set larger than
// WithMaxRetainedChanges is published but not kept: readers from before it
// resynchronise (ok false, Complete false), every follower is woken, and
// later change sets are retained again.
func TestLargeChangeSetNotRetained(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)), WithMaxRetainedChanges(3))
	mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)))
	other := s.Follow(SubjectTopic("other", SubjectUser, "nobody"))
	defer other.Close()
	big := mustApply(t, s, // 4 subject changes and 4 overrides
		UpsertOverride(userOverride("ns", "o1", "u1", created, off("a"))),
		UpsertOverride(userOverride("ns", "o2", "u2", created, off("a"))),
		UpsertOverride(userOverride("ns", "o3", "u3", created, off("a"))),
		UpsertOverride(userOverride("ns", "o4", "u4", created, off("a"))),
	)
	if big.Revision != 2 || len(big.Subjects) != 4 {
		t.Fatalf("Apply returned %+v, want the whole change set of revision 2", big)
	}
	for _, since := range []uint64{0, 1} {
		if got, _, ok := s.Changes(since); ok || got != nil {
			t.Errorf("Changes(%d) = %v, %v; want nil, false", since, revisions(got), ok)
		}
	}
	ch := other.ChangesFor(1)
	if ch.Complete || len(ch.Keys) != 0 || ch.Snapshot.Revision() != 2 {
		t.Errorf("ChangesFor(1) = complete %v, keys %v at revision %d; want incomplete, none, 2", ch.Complete, ch.Keys, ch.Snapshot.Revision())
	}
	cs3 := mustApply(t, s, UpsertOverride(userOverride("ns", "o1", "u1", created, on("a"))))
	if got, _, ok := s.Changes(2); !ok || !reflect.DeepEqual(got, []ChangeSet{cs3}) {
		t.Errorf("Changes(2) = %+v, %v; want revision 3, true", got, ok)
	}
	if got := other.ChangesFor(2); !got.Complete {
		t.Error("ChangesFor(2): incomplete after the large change set")
	}
	if got, _, ok := NewStore(WithMaxRetainedChanges(0)).Changes(0); !ok || got != nil {
		t.Errorf("max 0 (clamped to 1): %v, %v", got, ok)
	}
}

// TestLargeChangeSetWakesEveryFollower: followers of topics the large
// change set does not list are woken too, since they cannot tell.
func TestLargeChangeSetWakesEveryFollower(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)), WithMaxRetainedChanges(1))
	fo := s.Follow(SubjectTopic("other", SubjectUser, "nobody"))
	defer fo.Close()
	wake := fo.ChangesFor(0).Wake
	mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)), UpsertFlag("ns", "b", boolFlag(true)))
	if !closed(wake) {
		t.Error("a change set that is not retained did not wake a follower")
	}
}
