package server

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"

	"github.com/flagops/flagops/evaluator"
)

// BenchmarkFlagOverridesRoute serves GET /v1/flags/{key}/overrides end to
// end through the handler (routing, query, look-up, JSON) from a namespace
// of 10,000 flags and 100,000 user overrides of 1 to 32 entries naming
// random flags (about 165 entries per flag), where every override also
// names flag hot (100,000 entries).
func BenchmarkFlagOverridesRoute(b *testing.B) {
	const flags, overrides = 10_000, 100_000
	store := evaluator.NewStore()
	rng := rand.New(rand.NewPCG(10, 100))
	ops := []evaluator.Op{evaluator.UpsertFlag("shop", "hot", evaluator.FlagSpec{Type: evaluator.TypeBoolean})}
	for i := range flags {
		ops = append(ops, evaluator.UpsertFlag("shop", "flag-"+strconv.Itoa(i), evaluator.FlagSpec{Type: evaluator.TypeBoolean}))
	}
	for i := range overrides {
		id := strconv.Itoa(i)
		entries := []evaluator.OverrideEntry{{Key: "hot", Value: json.RawMessage(`true`)}}
		seen := map[int]bool{}
		for n := 1 + rng.IntN(32); len(seen) < n; {
			if k := rng.IntN(flags); !seen[k] {
				seen[k] = true
				entries = append(entries, evaluator.OverrideEntry{Key: "flag-" + strconv.Itoa(k)})
			}
		}
		ops = append(ops, evaluator.UpsertOverride(evaluator.Override{
			Kind: evaluator.SubjectUser, SubjectID: "user-" + id, Namespace: "shop", Name: "o-" + id,
			Enabled: true, Reason: "benchmark", Entries: entries,
		}))
	}
	if _, _, err := store.Apply(ops...); err != nil {
		b.Fatal(err)
	}
	h := New(store, Options{DefaultNamespace: "shop"})
	runtime.GC() // the set-up's garbage is not the requests' to collect
	get := func(b *testing.B, target string) overridesBody {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var body overridesBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			b.Fatal(err)
		}
		return body
	}
	// Half of the subjects sort before user-5 (user-0 to user-49999 but
	// user-5).
	mid := "/v1/flags/hot/overrides?continue=" + encodeContinue(continueToken{Namespace: "shop", Key: "hot",
		After: evaluator.OverrideCursor{Kind: evaluator.SubjectUser, SubjectID: "user-5", Name: "o-5"}})
	cases := []struct {
		name, target string
		items, total int
	}{
		{"typical-flag-first-100", "/v1/flags/flag-4242/overrides", 100, 0},
		{"typical-flag-all", "/v1/flags/flag-4242/overrides?limit=1000", -1, 0},
		{"hot-flag-first-100", "/v1/flags/hot/overrides", 100, overrides},
		{"hot-flag-100-from-the-middle", mid, 100, overrides},
		{"hot-flag-1000", "/v1/flags/hot/overrides?limit=1000", 1000, overrides},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			body := get(b, c.target)
			if (c.items >= 0 && len(body.Overrides) != c.items) || (c.items < 0 && len(body.Overrides) != body.Total) ||
				(c.total > 0 && body.Total != c.total) {
				b.Fatalf("%d items of %d", len(body.Overrides), body.Total)
			}
			req := httptest.NewRequest(http.MethodGet, c.target, nil)
			rec := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				rec.Body.Reset()
				clear(rec.Header())
				rec.Code = 0
				h.ServeHTTP(rec, req)
			}
			b.ReportMetric(float64(len(body.Overrides)), "items")
		})
	}
}
