package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
