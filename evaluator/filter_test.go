package evaluator

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
)

// filterPairs returns every (kind, subject, key) pair of st's subject index
// with its pair hash.
func filterPairs(st *nsState) map[string]uint64 {
	pairs := map[string]uint64{}
	for _, kind := range []SubjectKind{SubjectUser, SubjectDevice} {
		st.subjects(kind).each(func(sh *subjShard) {
			for _, s := range sh.slots {
				if s.se == nil {
					continue
				}
				for _, kc := range s.se.keys {
					pairs[string(kind)+"/"+s.se.id+"/"+kc.key] = pairHash(kind, hashOf(s.se.id), hashOf(kc.key))
				}
			}
		})
	}
	return pairs
}

// TestPairFilterKeepsEveryPair writes random batches of overrides, flags and
// deletions, and checks after each that every pair of the subject index is
// in the filter, that the filter counts them, and that a one-flag
// evaluation, which asks the filter, agrees with evaluating every flag,
// which does not.
func TestPairFilterKeepsEveryPair(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	s := NewStore(WithClock(newFakeClock(t0)))
	const flags, users, devices, names = 12, 300, 60, 1500
	flagKey := func(i int) string { return fmt.Sprintf("f-%02d", i) }
	for i := range flags {
		mustApply(t, s, UpsertFlag("ns", flagKey(i), boolFlag(i%2 == 0)))
	}
	live := map[string]SubjectKind{} // object name -> kind
	var grew, shrank bool
	prevBlocks := 0
	for round := range 240 {
		var ops []Op
		switch {
		case round >= 160 && round < 180:
			// Delete nearly everything, so that the filter shrinks.
			for name, kind := range live {
				if rng.IntN(10) > 0 {
					ops = append(ops, DeleteOverride(kind, "ns", name))
					delete(live, name)
				}
			}
		default:
			for range 1 + rng.IntN(60) {
				name := fmt.Sprintf("o-%04d", rng.IntN(names))
				switch r := rng.IntN(100); {
				case r < 75:
					var entries []OverrideEntry
					for range 1 + rng.IntN(4) {
						key := flagKey(rng.IntN(flags))
						if rng.IntN(10) == 0 {
							key = fmt.Sprintf("unknown-%d", rng.IntN(5))
						}
						entries = append(entries, []OverrideEntry{on(key), off(key)}[rng.IntN(2)])
					}
					kind, o := SubjectUser, userOverride("ns", name, fmt.Sprintf("user-%03d", rng.IntN(users)), t0, entries...)
					if rng.IntN(4) == 0 {
						kind, o = SubjectDevice, deviceOverride("ns", name, fmt.Sprintf("device-%02d", rng.IntN(devices)), t0, entries...)
					}
					if old, ok := live[name]; ok && old != kind {
						ops = append(ops, DeleteOverride(old, "ns", name))
					}
					ops = append(ops, UpsertOverride(o))
					live[name] = kind
				case r < 95:
					if kind, ok := live[name]; ok {
						ops = append(ops, DeleteOverride(kind, "ns", name))
						delete(live, name)
					}
				case r < 98:
					ops = append(ops, DeleteFlag("ns", flagKey(rng.IntN(flags))))
				default:
					ops = append(ops, UpsertFlag("ns", flagKey(rng.IntN(flags)), boolFlag(rng.IntN(2) == 0)))
				}
			}
		}
		if len(ops) == 0 {
			continue
		}
		mustApply(t, s, ops...)
		h := s.Namespace("ns")
		st := h.st
		pairs := filterPairs(st)
		if st.filter.live != len(pairs) {
			t.Fatalf("round %d: the filter counts %d pairs, the index has %d", round, st.filter.live, len(pairs))
		}
		for p, x := range pairs {
			if !st.filter.may(x) {
				t.Fatalf("round %d: pair %s is missing from the filter", round, p)
			}
		}
		if n := len(st.filter.blocks); n > prevBlocks && prevBlocks > 0 {
			grew = true
		} else if n < prevBlocks {
			shrank = true
		}
		prevBlocks = len(st.filter.blocks)
		for range 40 {
			ctx := Context{UserID: fmt.Sprintf("user-%03d", rng.IntN(users+20))}
			if rng.IntN(3) == 0 {
				ctx.DeviceID, ctx.DeviceClass = fmt.Sprintf("device-%02d", rng.IntN(devices+5)), "phone"
			}
			for _, want := range h.EvaluateAll(ctx) {
				if got := h.Evaluate(ctx, want.Key); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: Evaluate(%+v, %q) = %+v, EvaluateAll has %+v", round, ctx, want.Key, got, want)
				}
			}
		}
	}
	if !grew || !shrank {
		t.Errorf("the filter never had to grow (%v) or shrink (%v): the test does not reach a rebuild", grew, shrank)
	}
}

// falsePositives returns the share of n pairs that no override has which
// the filter of h still lets through.
func falsePositives(h Namespace, n int) float64 {
	fp := 0
	for i := range n {
		if h.st.filter.may(pairHash(SubjectUser, hashOf(fmt.Sprintf("absent-%06d", i)), hashOf("scale.flag-000"))) {
			fp++
		}
	}
	return float64(fp) / float64(n)
}

// TestPairFilterRulesOutAbsentPairs checks that the filter answers "no" for
// nearly every pair that has no entries, both when it was built in one write
// and at its design load after writes one at a time, and that it holds no
// memory once the namespace has no overrides.
func TestPairFilterRulesOutAbsentPairs(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, manyOverridesOps(200, 10_000, 1_000)...)
	h := s.Namespace("ns")
	got := falsePositives(h, 20_000)
	t.Logf("after one write of 22,000 pairs: %d blocks, %.2f%% false positives", len(h.st.filter.blocks), 100*got)
	if got > 0.01 {
		t.Errorf("after one write of 22,000 pairs, %.2f%% of absent pairs pass the filter, want at most 1%%", 100*got)
	}
	// Up to the design load in writes that each stay below it: no rebuild on
	// the way.
	blocks, i := len(h.st.filter.blocks), 0
	more := func(n int) {
		ops := make([]Op, 0, n)
		for range n {
			ops = append(ops, UpsertOverride(userOverride("ns", fmt.Sprintf("more-%06d", i), fmt.Sprintf("more-%06d", i), t0,
				on(fmt.Sprintf("scale.flag-%03d", i%200)), off(fmt.Sprintf("scale.flag-%03d", (i+1)%200)))))
			i++
		}
		mustApply(t, s, ops...)
		h = s.Namespace("ns")
	}
	room := func() int { f := h.st.filter; return f.capacity() - max(f.live, f.added) }
	for room() >= 2 {
		more(room() / 2)
	}
	if len(h.st.filter.blocks) != blocks {
		t.Fatalf("the filter was rebuilt below its design load: %d blocks, then %d", blocks, len(h.st.filter.blocks))
	}
	got = falsePositives(h, 20_000)
	t.Logf("at the design load, %d pairs: %d blocks, %.2f%% false positives", h.st.filter.live, len(h.st.filter.blocks), 100*got)
	if got > 0.05 {
		t.Errorf("at the design load, %.2f%% of absent pairs pass the filter, want at most 5%%", 100*got)
	}
	// Past it, the filter is rebuilt at the smallest size that holds twice
	// its pairs.
	for range 100 {
		if len(h.st.filter.blocks) != blocks {
			break
		}
		more(1)
	}
	if f := h.st.filter; len(f.blocks) <= blocks || f.capacity() < 2*f.live || f.capacity()/2 >= 2*f.live {
		t.Errorf("past its design load the filter has %d blocks (%d before) for %d pairs", len(f.blocks), blocks, f.live)
	}
	got = falsePositives(h, 20_000)
	t.Logf("after the rebuild, %d pairs: %d blocks, %.2f%% false positives", h.st.filter.live, len(h.st.filter.blocks), 100*got)
	if got > 0.01 {
		t.Errorf("after the rebuild, %.2f%% of absent pairs pass the filter, want at most 1%%", 100*got)
	}
	// Without overrides the namespace keeps no filter.
	var ops []Op
	for _, o := range h.Overrides() {
		ops = append(ops, DeleteOverride(o.Kind, "ns", o.Name))
	}
	mustApply(t, s, ops...)
	if f := s.Namespace("ns").st.filter; f.blocks != nil || f.live != 0 {
		t.Errorf("with no overrides left the filter has %d blocks and %d pairs", len(f.blocks), f.live)
	}
}

// TestPairFilterKeepsOlderStates checks that writes, rebuilds included, never
// clear a bit that a published state's pairs need, so that a reader still
// holding an older snapshot keeps finding its overrides. The namespace grows
// to 2,000 overrides and then replaces its oldest one with a new subject on
// each write, so that the filter is rebuilt both larger and at its own size.
func TestPairFilterKeepsOlderStates(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "f", boolFlag(false)))
	type kept struct {
		h    Namespace
		user string
	}
	var states []kept
	grown, sameSize := 0, 0
	for i := range 7000 {
		var ops []Op
		if i >= 2000 {
			ops = append(ops, DeleteOverride(SubjectUser, "ns", fmt.Sprintf("o-%d", i-2000)))
		}
		user := fmt.Sprintf("user-%d", i)
		ops = append(ops, UpsertOverride(userOverride("ns", fmt.Sprintf("o-%d", i), user, t0, on("f"))))
		before := s.Namespace("ns").st.filter.blocks
		mustApply(t, s, ops...)
		after := s.Namespace("ns").st.filter.blocks
		switch {
		case len(before) == 0:
		case len(after) > len(before):
			grown++
		case &after[0] != &before[0]:
			sameSize++
		}
		if i%100 == 0 {
			states = append(states, kept{s.Namespace("ns"), user})
		}
	}
	for _, k := range states {
		for p, x := range filterPairs(k.h.st) {
			if !k.h.st.filter.may(x) {
				t.Fatalf("an older state lost pair %s from its filter", p)
			}
		}
		if r := k.h.Evaluate(Context{UserID: k.user}, "f"); r.Value != true {
			t.Fatalf("an older state serves %+v to %s", r, k.user)
		}
	}
	if grown == 0 || sameSize == 0 {
		t.Errorf("%d rebuilds to grow, %d at the same size; want some of each", grown, sameSize)
	}
}

// TestPairFilterConcurrentReaders evaluates new users' overrides in the
// latest snapshot while a writer adds them, which sets bits in the filter
// those readers are reading and rebuilds it as it grows; run with -race.
func TestPairFilterConcurrentReaders(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "f", boolFlag(false)))
	base := s.Snapshot().Revision()
	const users = 4000
	done := make(chan struct{})
	errs := make(chan string, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for {
				select {
				case <-done:
					return
				default:
				}
				snap := s.Snapshot()
				// Revision base+k holds users 0 to k-1.
				n := int(snap.Revision() - base)
				if n == 0 {
					continue
				}
				k := rng.IntN(n)
				if got := snap.Namespace("ns").Evaluate(Context{UserID: fmt.Sprintf("user-%d", k)}, "f"); got.Value != true {
					errs <- fmt.Sprintf("revision %d served %+v to user-%d", snap.Revision(), got, k)
					return
				}
			}
		}()
	}
	for i := range users {
		mustApply(t, s, UpsertOverride(userOverride("ns", fmt.Sprintf("o-%d", i), fmt.Sprintf("user-%d", i), t0, on("f"))))
	}
	close(done)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
