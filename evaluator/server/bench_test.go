package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flagops/flagops/evaluator"
)

func benchmarkPost(b *testing.B, target, body string) {
	h, _ := newTestHandler(b, Options{})
	rd := strings.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, target, rd)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rd.Reset(body)
		req.Body = readCloser{rd}
		rec.Body.Reset()
		clear(rec.Header())
		rec.Code = 0
		h.ServeHTTP(rec, req)
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func BenchmarkOFREPSingle(b *testing.B) {
	benchmarkPost(b, "/ofrep/v1/evaluate/flags/theme", `{"context":{"targetingKey":"user-42","orgId":"acme","plan":"pro"}}`)
}

func BenchmarkOFREPBulk(b *testing.B) {
	benchmarkPost(b, "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"user-42","orgId":"acme","plan":"pro"}}`)
}

// The Override benchmarks evaluate for alice, whose user override (with an
// expiry and a reason) decides new-checkout.
func BenchmarkOFREPSingleOverride(b *testing.B) {
	benchmarkPost(b, "/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"targetingKey":"alice"}}`)
}

func BenchmarkOFREPBulkOverride(b *testing.B) {
	benchmarkPost(b, "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"alice"}}`)
}

// BenchmarkOverrideMeta is what a result decided by an override pays on top
// of the others: the lookup of the override's expiry and reason.
func BenchmarkOverrideMeta(b *testing.B) {
	store, _ := newTestStore(b)
	ns := store.Namespace("shop")
	ctx := evaluator.Context{TargetingKey: "alice"}
	res := ns.Evaluate(ctx, "new-checkout")
	if m := overrideMetaOf(ns, &ctx, &res); m.reason == "" || m.expiresAt == "" {
		b.Fatalf("overrideMetaOf = %+v, want alice-beta's reason and expiry", m)
	}
	b.ReportAllocs()
	for b.Loop() {
		overrideMetaOf(ns, &ctx, &res)
	}
}
