package evaluator

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func refKeys(refs []FlagRef) []string {
	out := []string{}
	for _, r := range refs {
		out = append(out, r.Namespace+"/"+r.Key)
	}
	return out
}

// TestChangesForWakesOnlyForItsTopics: a write closes a follower's wake
// channel exactly when it touches one of the follower's topics, and the
// next read reports exactly the keys it touched there.
func TestChangesForWakesOnlyForItsTopics(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk))
	mustApply(t, s,
		UpsertFlag("ns", "a", boolFlag(true)), UpsertFlag("ns", "b", boolFlag(true)),
		UpsertFlag("other", "a", boolFlag(true)),
	)
	fo := s.Follow(FlagsTopic("ns"), SubjectTopic("ns", SubjectUser, "bob"),
		SubjectTopic("ns", SubjectDevice, "d1"), FlagsTopic("ns"))
	defer fo.Close()
	step := t0.Add(3 * time.Hour)
	tests := []struct {
		name  string
		write func()
		want  []string // keys; nil: no wake
	}{
		{"flag of another namespace", func() { mustApply(t, s, UpsertFlag("other", "a", boolFlag(false))) }, nil},
		{"another user's override", func() { mustApply(t, s, UpsertOverride(userOverride("ns", "o1", "carol", created, off("a")))) }, nil},
		{"the user's override in another namespace", func() {
			mustApply(t, s, UpsertOverride(userOverride("other", "o1", "bob", created, off("a"))))
		}, nil},
		{"another device's override", func() { mustApply(t, s, UpsertOverride(deviceOverride("ns", "o2", "d2", created, off("a")))) }, nil},
		{"no-op tick", func() { s.Tick(clk.Now()) }, nil},
		{"override with no effect", func() {
			// bob has no override of b yet; an override of an unknown
			// flag changes no outcome.
			mustApply(t, s, UpsertOverride(userOverride("ns", "o3", "bob", created, off("nope"))))
		}, nil},
		{"the user's override", func() {
			mustApply(t, s, UpsertOverride(expiring(userOverride("ns", "o4", "bob", created, off("a")), t0.Add(time.Hour))))
		}, []string{"ns/a"}},
		{"the device's override", func() { mustApply(t, s, UpsertOverride(deviceOverride("ns", "o5", "d1", created, off("b")))) }, []string{"ns/b"}},
		{"a flag of the namespace", func() {
			mustApply(t, s, UpsertFlag("ns", "c", FlagSpec{Type: TypeBoolean, Schedule: []ScheduleStep{{At: step, Enabled: ptr(true)}}}))
		}, []string{"ns/c"}},
		{"expiry of the user's override", func() { clk.Set(t0.Add(2 * time.Hour)); s.Tick(clk.Now()) }, []string{"ns/a"}},
		{"schedule step", func() { clk.Set(step); s.Tick(clk.Now()) }, []string{"ns/c"}},
		{"several writes, one read", func() {
			mustApply(t, s, UpsertFlag("ns", "b", boolFlag(false)))
			mustApply(t, s, UpsertOverride(userOverride("ns", "o6", "bob", created, off("c"))))
			mustApply(t, s, UpsertFlag("ns", "b", boolFlag(true)))
		}, []string{"ns/b", "ns/c"}},
	}
	pos := s.Snapshot().Revision()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := fo.ChangesFor(pos)
			if len(ch.Keys) != 0 || !ch.Complete || ch.Snapshot.Revision() != pos {
				t.Fatalf("before the write: %+v", ch)
			}
			tc.write()
			if woke := closed(ch.Wake); woke != (tc.want != nil) {
				t.Errorf("woken = %v, want %v", woke, tc.want != nil)
			}
			ch = fo.ChangesFor(pos)
			if want := tc.want; !reflect.DeepEqual(refKeys(ch.Keys), append([]string{}, want...)) || !ch.Complete {
				t.Errorf("keys = %v (complete %v), want %v", refKeys(ch.Keys), ch.Complete, want)
			}
			if ch.Snapshot != s.Snapshot() {
				t.Errorf("read returned snapshot %d, store is at %d", ch.Snapshot.Revision(), s.Snapshot().Revision())
			}
			pos = ch.Snapshot.Revision()
		})
	}

	t.Run("history gone", func(t *testing.T) {
		s := NewStore(WithClock(clk), WithChangeHistory(2))
		fo := s.Follow(FlagsTopic("ns"))
		defer fo.Close()
		for range 3 {
			mustApply(t, s, UpsertFlag("ns", "a", boolFlag(true)))
		}
		if ch := fo.ChangesFor(0); ch.Complete || len(ch.Keys) != 0 || ch.Snapshot.Revision() != 3 {
			t.Errorf("ChangesFor(0) = keys %v, complete %v, revision %d; want none, false, 3",
				ch.Keys, ch.Complete, ch.Snapshot.Revision())
		}
		if ch := fo.ChangesFor(1); !ch.Complete || !reflect.DeepEqual(refKeys(ch.Keys), []string{"ns/a"}) {
			t.Errorf("ChangesFor(1) = %v, %v", ch.Keys, ch.Complete)
		}
	})

	t.Run("closed follower", func(t *testing.T) {
		fo := s.Follow(FlagsTopic("ns"), SubjectTopic("ns", SubjectUser, "zed"))
		ch := fo.ChangesFor(s.Snapshot().Revision())
		fo.Close()
		mustApply(t, s, UpsertFlag("ns", "a", boolFlag(false)))
		if closed(ch.Wake) {
			t.Error("a closed follower was woken")
		}
		s.feed.mu.Lock()
		defer s.feed.mu.Unlock()
		if _, ok := s.feed.followers[SubjectTopic("ns", SubjectUser, "zed")]; ok {
			t.Error("the topic of a closed follower is still registered")
		}
	})
}

// TestChangesForNeverMissesAWrite runs followers against a concurrent
// writer. Each follower reads, then waits only on the channel of that
// read. Every write that touched a follower's topics must appear in one of
// its reads, in the read whose revision range holds it, and every follower
// must reach the final write.
func TestChangesForNeverMissesAWrite(t *testing.T) {
	const (
		writes    = 3000
		followers = 8
	)
	nss := []string{"a", "b"}
	keys := []string{"k0", "k1", "k2", "k3"}
	users := func(i int) string { return fmt.Sprintf("u%d", i) }
	clk := newFakeClock(t0)
	s := NewStore(WithClock(clk), WithChangeHistory(writes+16))
	var setup []Op
	for _, ns := range nss {
		for _, k := range keys {
			setup = append(setup, UpsertFlag(ns, k, boolFlag(true)))
		}
	}
	mustApply(t, s, setup...)
	start := s.Snapshot().Revision()

	type read struct {
		since, until uint64
		keys         []FlagRef
	}
	type result struct {
		reads []read
		err   error
	}
	results := make([]chan result, followers)
	topics := make([][]Topic, followers)
	for i := range followers {
		ns := nss[i%len(nss)]
		topics[i] = []Topic{FlagsTopic(ns), SubjectTopic(ns, SubjectUser, users(i))}
		results[i] = make(chan result, 1)
		fo := s.Follow(topics[i]...)
		go func() {
			defer fo.Close()
			var res result
			pos := start
			for {
				ch := fo.ChangesFor(pos)
				if !ch.Complete {
					res.err = fmt.Errorf("history lost at %d", pos)
					break
				}
				res.reads = append(res.reads, read{pos, ch.Snapshot.Revision(), ch.Keys})
				pos = ch.Snapshot.Revision()
				if slices.Contains(ch.Keys, FlagRef{ns, "final"}) {
					break
				}
				select {
				case <-ch.Wake:
				case <-time.After(20 * time.Second):
					res.err = fmt.Errorf("stuck at revision %d (store at %d)", pos, s.Snapshot().Revision())
				}
				if res.err != nil {
					break
				}
			}
			results[i] <- res
		}()
	}

	rng := rand.New(rand.NewPCG(1, 2))
	written := map[uint64]ChangeSet{}
	for w := range writes {
		ns := nss[rng.IntN(len(nss))]
		key := keys[rng.IntN(len(keys))]
		var cs ChangeSet
		switch rng.IntN(4) {
		case 0:
			cs = mustApply(t, s, UpsertFlag(ns, key, boolFlag(rng.IntN(2) == 0)))
		case 1:
			entry := on(key)
			if w%2 == 0 {
				entry = off(key)
			}
			user := users(rng.IntN(followers + 4)) // some users nobody follows
			cs = mustApply(t, s, UpsertOverride(userOverride(ns, "o-"+user, user, created, entry)))
		case 2:
			cs = mustApply(t, s, UpsertOverride(deviceOverride(ns, "d", "d1", created, on(key))))
		default:
			_, cs = s.Tick(clk.Now())
		}
		written[cs.Revision] = cs
	}
	var final []Op
	for _, ns := range nss {
		final = append(final, UpsertFlag(ns, "final", boolFlag(true)))
	}
	finalCS := mustApply(t, s, final...)
	written[finalCS.Revision] = finalCS

	for i := range followers {
		var res result
		select {
		case res = <-results[i]:
		case <-time.After(60 * time.Second):
			t.Fatalf("follower %d did not finish", i)
		}
		if res.err != nil {
			t.Errorf("follower %d: %v", i, res.err)
			continue
		}
		// The reads cover every revision once, in order.
		next := start
		for _, r := range res.reads {
			if r.since != next {
				t.Fatalf("follower %d: read from %d, want %d", i, r.since, next)
			}
			next = r.until
			// Exactly the keys the writes in (since, until] touched.
			var want []FlagRef
			for rev := r.since + 1; rev <= r.until; rev++ {
				cs := written[rev]
				for _, f := range cs.Flags {
					if slices.Contains(topics[i], FlagsTopic(f.Namespace)) {
						want = append(want, f)
					}
				}
				for _, sc := range cs.Subjects {
					if slices.Contains(topics[i], SubjectTopic(sc.Namespace, sc.Kind, sc.SubjectID)) {
						want = append(want, FlagRef{sc.Namespace, sc.Key})
					}
				}
			}
			slices.SortFunc(want, compareFlagRef)
			want = slices.Compact(want)
			if !slices.Equal(r.keys, want) {
				t.Errorf("follower %d: read (%d, %d] = %v, want %v", i, r.since, r.until, r.keys, want)
			}
		}
		if next < finalCS.Revision {
			t.Errorf("follower %d stopped at %d, before the final write %d", i, next, finalCS.Revision)
		}
	}
}

// TestEvaluateListed: EvaluateListed lists a key exactly when EvaluateAll
// does, with the same result.
func TestEvaluateListed(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s,
		UpsertFlag("ns", "plain", boolFlag(true)),
		UpsertFlag("ns", "gated", FlagSpec{Type: TypeBoolean, Enabled: true, AllowedRoles: []string{"admin"}}),
		UpsertFlag("ns", "broken", FlagSpec{Type: "nope"}),
		UpsertOverride(userOverride("ns", "o", "bob", created, off("plain"))),
	)
	tests := []struct {
		name string
		ctx  Context
	}{
		{"anonymous", Context{}},
		{"admin", Context{Role: "admin"}},
		{"user with override", Context{UserID: "bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := s.Namespace("ns")
			all := map[string]Result{}
			for _, r := range ns.EvaluateAll(tc.ctx) {
				all[r.Key] = r
			}
			for _, key := range append(ns.Keys(), "unknown") {
				got, listed := ns.EvaluateListed(tc.ctx, key)
				want, inAll := all[key]
				if listed != inAll || !reflect.DeepEqual(got, want) {
					t.Errorf("%s: EvaluateListed = %+v, %v; EvaluateAll has %+v, %v", key, got, listed, want, inAll)
				}
			}
		})
	}
	if _, ok := (Namespace{}).EvaluateListed(Context{}, "plain"); ok {
		t.Error("a zero Namespace lists a key")
	}
	if _, ok := s.Namespace("missing").EvaluateListed(Context{}, "plain"); ok {
		t.Error("a missing namespace lists a key")
	}
}
