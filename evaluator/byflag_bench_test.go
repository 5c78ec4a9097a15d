package evaluator

import (
	"runtime"
	"testing"
)

// BenchmarkFlagOverrides lists the overrides of one flag in the store of
// manyKeysOps (10,000 flags, 100,000 overrides, about 165 entries per
// flag). FlagOverrides reads every override object of the namespace, so
// the first page costs about as much as the whole listing.
func BenchmarkFlagOverrides(b *testing.B) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(b, s, manyKeysOps()...)
	ns := s.Namespace("ns")
	const key = "flag-4242"
	want := ns.FlagOverrides(key, nil, 0).Total
	if want < 100 {
		b.Fatalf("%s is named by %d entries", key, want)
	}
	runtime.GC() // the set-up's garbage is not the look-ups' to collect
	b.Run("first-100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p := ns.FlagOverrides(key, nil, 100); len(p.Overrides) != 100 {
				b.Fatal(len(p.Overrides))
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if p := ns.FlagOverrides(key, nil, 0); len(p.Overrides) != want {
				b.Fatal(len(p.Overrides))
			}
		}
	})
}
