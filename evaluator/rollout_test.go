package evaluator

import (
	"strconv"
	"testing"
)

// Golden buckets computed once, independently of this package, with a
// separate program (sha256 of key+"/"+principal, first 8 bytes big-endian,
// mod 100) and cross-checked with sha256sum.
var goldenBuckets = []struct {
	key, principal string
	bucket         uint64
}{
	{"new-checkout", "alice", 29},
	{"new-checkout", "bob", 80},
	{"new-checkout", "carol", 61},
	{"dark-mode", "alice", 59},
	{"dark-mode", "user-42", 81},
	{"search-v2", "org-acme", 88},
	{"search-v2", "0", 40},
	{"", "", 15},
	{"pricing", "ünïcode-üser", 47},
	{"pricing", "550e8400-e29b-41d4-a716-446655440000", 15},
	{"a/b", "c", 88},
	{"beta", "device-7", 76},
}

func TestBucketGoldenVectors(t *testing.T) {
	for _, tc := range goldenBuckets {
		t.Run(tc.key+"/"+tc.principal, func(t *testing.T) {
			if got := Bucket(tc.key, tc.principal); got != tc.bucket {
				t.Fatalf("Bucket = %d, want %d", got, tc.bucket)
			}
			if tc.key == "" {
				return
			}
			// The evaluation path must agree: a principal in bucket b is in
			// a rollout of b+1 percent and out of one of b percent.
			for _, pct := range []int32{int32(tc.bucket), int32(tc.bucket) + 1} {
				s := NewStore(WithClock(newFakeClock(t0)))
				mustApply(t, s, UpsertFlag("ns", tc.key, FlagSpec{Type: TypeBoolean, Enabled: true, Rollout: &Rollout{Percentage: pct, BucketBy: "principal"}}))
				r := s.Evaluate("ns", Context{Attributes: map[string]any{"principal": tc.principal}}, tc.key)
				if wantOn := uint64(pct) > tc.bucket; r.Enabled != wantOn || r.Reason != ReasonSplit {
					t.Fatalf("percentage %d: %s", pct, r)
				}
			}
		})
	}
}

func TestRolloutNumericPrincipal(t *testing.T) {
	// Numbers are hashed in their decimal text form: 42 and "42" share a bucket.
	tests := []struct {
		name string
		v    any
	}{{"int", 42}, {"float", 42.0}, {"json number", "42"}, {"uint64", uint64(42)}}
	want := Bucket("n", "42")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(WithClock(newFakeClock(t0)))
			mustApply(t, s, UpsertFlag("ns", "n", FlagSpec{Type: TypeBoolean, Enabled: true, Rollout: &Rollout{Percentage: int32(want) + 1, BucketBy: "id"}}))
			if r := s.Evaluate("ns", Context{Attributes: map[string]any{"id": tc.v}}, "n"); !r.Enabled {
				t.Fatalf("principal %v not in bucket %d: %s", tc.v, want, r)
			}
		})
	}
}

func TestRolloutDistribution(t *testing.T) {
	s := NewStore(WithClock(newFakeClock(t0)))
	mustApply(t, s, UpsertFlag("ns", "dist", FlagSpec{Type: TypeBoolean, Enabled: true, Rollout: &Rollout{Percentage: 25}}))
	h := s.Namespace("ns")
	const users = 100_000
	on := 0
	for i := range users {
		if h.Evaluate(Context{UserID: "user-" + strconv.Itoa(i)}, "dist").Enabled {
			on++
		}
	}
	if on < users*23/100 || on > users*27/100 {
		t.Fatalf("%d of %d users in a 25%% rollout", on, users)
	}
	t.Logf("%d of %d users (%.2f%%) in a 25%% rollout", on, users, float64(on)*100/users)
}
