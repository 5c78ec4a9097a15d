package evaluator

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
)

// These benchmarks measure the store at 10,000 flags and 100,000 overrides,
// through its public API only.

const (
	manyFlags     = 10_000
	manyOverrides = 100_000
)

// manyKeysOps returns the flags and overrides of a namespace with
// manyFlags flags and manyOverrides user overrides of 1 to 32 entries each,
// naming flags picked at random (about 1.65 million entries).
func manyKeysOps() []Op {
	rng := rand.New(rand.NewPCG(10, 100))
	ops := make([]Op, 0, manyFlags+manyOverrides)
	for i := range manyFlags {
		ops = append(ops, UpsertFlag("ns", "flag-"+strconv.Itoa(i), boolFlag(false)))
	}
	for i := range manyOverrides {
		id := strconv.Itoa(i)
		ops = append(ops, UpsertOverride(userOverride("ns", "o-"+id, "user-"+id, t0, randomEntries(rng)...)))
	}
	return ops
}

// randomEntries returns 1 to 32 entries naming distinct random flags.
func randomEntries(rng *rand.Rand) []OverrideEntry {
	n := 1 + rng.IntN(32)
	entries := make([]OverrideEntry, 0, n)
	seen := make(map[int]bool, n)
	for len(entries) < n {
		k := rng.IntN(manyFlags)
		if seen[k] {
			continue
		}
		seen[k] = true
		entries = append(entries, on("flag-"+strconv.Itoa(k)))
	}
	return entries
}

// BenchmarkLoadManyKeys applies manyKeysOps in one batch to an empty
// store, as the initial sync does, and reports the heap the store holds
// beyond its input.
func BenchmarkLoadManyKeys(b *testing.B) { benchmarkLoad(b, manyKeysOps()) }

// BenchmarkLoadManyOverrides is BenchmarkLoadManyKeys for the namespace of
// hack/scale: 200 flags, 100,000 user and 10,000 device overrides of two
// entries each.
func BenchmarkLoadManyOverrides(b *testing.B) {
	benchmarkLoad(b, manyOverridesOps(200, 100_000, 10_000))
}

func benchmarkLoad(b *testing.B, ops []Op) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var s *Store
	for b.Loop() {
		s = NewStore(WithClock(newFakeClock(t0)))
		mustApply(b, s, ops...)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc-base)/(1<<20), "heap-MiB")
	// The input stays alive, as the objects it is decoded from do in a syncer: the
	// figure is the store's own heap, not net of the input's garbage.
	runtime.KeepAlive(s)
	runtime.KeepAlive(ops)
}

// BenchmarkApplyManyKeys replaces one override of 1 to 32 entries in the
// store of manyKeysOps per write.
func BenchmarkApplyManyKeys(b *testing.B) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(b, s, manyKeysOps()...)
	rng := rand.New(rand.NewPCG(20, 200))
	sets := make([][]OverrideEntry, 1024)
	for i := range sets {
		sets[i] = randomEntries(rng)
	}
	runtime.GC() // the set-up's garbage is not the writes' to collect
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		id := strconv.Itoa(rng.IntN(manyOverrides))
		o := userOverride("ns", "o-"+id, "user-"+id, t0, sets[i%len(sets)]...)
		i++
		if _, _, err := s.Apply(UpsertOverride(o)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlagChangeManyKeys changes the type of one flag in the store of
// manyKeysOps per write, which re-validates the overrides naming it
// (about 165 objects; their entries serve the on value, so all stay
// valid).
func BenchmarkFlagChangeManyKeys(b *testing.B) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(b, s, manyKeysOps()...)
	specs := [2]FlagSpec{{Type: TypeString, Value: raw(`"on"`)}, boolFlag(false)}
	runtime.GC() // the set-up's garbage is not the writes' to collect
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, cs, err := s.Apply(UpsertFlag("ns", "flag-4242", specs[i%2])); err != nil || len(cs.Flags) != 1 {
			b.Fatal(err, cs.Flags)
		}
	}
}
