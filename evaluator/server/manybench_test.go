package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// BenchmarkOFREPSingleManyOverrides is evaluator.BenchmarkManyOverrides as a
// client pays it: one OFREP single evaluation (POST
// /ofrep/v1/evaluate/flags/{key}) for a random principal, in a namespace of
// 200 Boolean flags with 100,000 user and 10,000 device overrides of two
// entries each (as hack/scale creates them), against the same flags with
// none, in the same run.
func BenchmarkOFREPSingleManyOverrides(b *testing.B) {
	const flags, users, devices = 200, 100_000, 10_000
	key := func(i int) string { return fmt.Sprintf("scale.flag-%03d", i%flags) }
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	entries := func(i int) []evaluator.OverrideEntry {
		on, off := true, false
		return []evaluator.OverrideEntry{{Key: key(i), Enabled: &on}, {Key: key(i + 1), Enabled: &off}}
	}
	rng := rand.New(rand.NewPCG(16, 1))
	type request struct{ target, body string }
	reqs := make([]request, 4096)
	for i := range reqs {
		ctx := fmt.Sprintf(`{"targetingKey":"user-%06d"}`, rng.IntN(2*users))
		if i%10 == 0 {
			ctx = fmt.Sprintf(`{"targetingKey":"x","deviceId":"device-%06d","deviceClass":"phone"}`, rng.IntN(2*devices))
		}
		reqs[i] = request{"/ofrep/v1/evaluate/flags/" + key(rng.IntN(flags)), `{"context":` + ctx + `}`}
	}
	errorCode := []byte(`"errorCode"`)
	for _, tc := range []struct {
		name           string
		users, devices int
	}{{"empty", 0, 0}, {"100k", users, devices}} {
		ops := make([]evaluator.Op, 0, flags+tc.users+tc.devices)
		for i := range flags {
			ops = append(ops, evaluator.UpsertFlag("ns", key(i), evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: i%2 == 0}))
		}
		for i := range tc.users {
			ops = append(ops, evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, Namespace: "ns",
				Name: fmt.Sprintf("u-%06d", i), SubjectID: fmt.Sprintf("user-%06d", i), CreatedAt: created, Enabled: true, Entries: entries(i)}))
		}
		for i := range tc.devices {
			ops = append(ops, evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectDevice, Namespace: "ns",
				Name: fmt.Sprintf("d-%06d", i), SubjectID: fmt.Sprintf("device-%06d", i), CreatedAt: created, Enabled: true, Entries: entries(i)}))
		}
		store := evaluator.NewStore()
		if _, _, err := store.Apply(ops...); err != nil {
			b.Fatal(err)
		}
		h := New(store, Options{DefaultNamespace: "ns"})
		b.Run(tc.name, func(b *testing.B) {
			rd := strings.NewReader("")
			rec := httptest.NewRecorder()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r := reqs[i%len(reqs)]
				rd.Reset(r.body)
				req := httptest.NewRequest(http.MethodPost, r.target, readCloser{rd})
				rec.Body.Reset()
				clear(rec.Header())
				rec.Code = 0
				h.ServeHTTP(rec, req)
				if bytes.Contains(rec.Body.Bytes(), errorCode) { // the recorder keeps the first status
					b.Fatalf("%s %s: %s", r.target, r.body, rec.Body)
				}
				i++
			}
		})
	}
}
