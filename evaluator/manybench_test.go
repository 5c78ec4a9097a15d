package evaluator

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// manyOverridesOps returns the namespace of hack/scale: flags Boolean flags (scale.flag-000
// ...), and users UserFlagOverrides and devices DeviceFlagOverrides of two entries each,
// spread over the flags as hack/scale creates them.
func manyOverridesOps(flags, users, devices int) []Op {
	key := func(i int) string { return fmt.Sprintf("scale.flag-%03d", i%flags) }
	ops := make([]Op, 0, flags+users+devices)
	for i := range flags {
		ops = append(ops, UpsertFlag("ns", key(i), boolFlag(i%2 == 0)))
	}
	for i := range users {
		ops = append(ops, UpsertOverride(userOverride("ns", fmt.Sprintf("u-%06d", i), fmt.Sprintf("user-%06d", i), t0,
			on(key(i)), off(key(i+1)))))
	}
	for i := range devices {
		ops = append(ops, UpsertOverride(deviceOverride("ns", fmt.Sprintf("d-%06d", i), fmt.Sprintf("device-%06d", i), t0,
			on(key(i)), off(key(i+1)))))
	}
	return ops
}

// BenchmarkManyOverrides is the evaluation cost of issue 16 part 1: a namespace of 200 flags
// with 100,000 UserFlagOverrides and 10,000 DeviceFlagOverrides (two entries each) against
// the same 200 flags with none, for random principals (one in two has overrides, one in ten
// is a device), so that no single warm user decides the figure. hack/scale reports the ratio
// of the two.
func BenchmarkManyOverrides(b *testing.B) {
	const flags, users, devices = 200, 100_000, 10_000
	rng := rand.New(rand.NewPCG(16, 1))
	ctxs := make([]Context, 4096)
	keys := make([]string, len(ctxs))
	for i := range ctxs {
		if i%10 == 0 {
			ctxs[i] = Context{DeviceID: fmt.Sprintf("device-%06d", rng.IntN(2*devices)), DeviceClass: "phone"}
		} else {
			ctxs[i] = Context{UserID: fmt.Sprintf("user-%06d", rng.IntN(2*users))}
		}
		keys[i] = fmt.Sprintf("scale.flag-%03d", rng.IntN(flags))
	}
	for _, tc := range []struct {
		name           string
		users, devices int
	}{{"empty", 0, 0}, {"100k", users, devices}} {
		s := NewStore(WithClock(newFakeClock(t0)))
		mustApply(b, s, manyOverridesOps(flags, tc.users, tc.devices)...)
		h := s.Namespace("ns")
		b.Run("one/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if r := h.Evaluate(ctxs[i%len(ctxs)], keys[i%len(keys)]); r.ErrorCode != ErrorNone {
					b.Fatal(r)
				}
				i++
			}
		})
		b.Run("all/"+tc.name, func(b *testing.B) {
			buf := make([]Result, 0, flags)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if buf = h.EvaluateAllInto(buf, ctxs[i%len(ctxs)]); len(buf) != flags {
					b.Fatal(len(buf))
				}
				i++
			}
		})
	}
}
