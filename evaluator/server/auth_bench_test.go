package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkTokenVerify measures one token verification per algorithm,
// without and with the verified-token cache.
func BenchmarkTokenVerify(b *testing.B) {
	k := testKeys()
	c := claims("shop", map[string]any{"userId": "user-42", "orgId": "acme", "deviceId": "p1", "deviceClass": "phone", "plan": "pro"})
	for _, bc := range []struct {
		name  string
		token string
	}{
		{"EdDSA", mint(b, jwt.SigningMethodEdDSA, k.ed, "ed-1", c)},
		{"RS256", mint(b, jwt.SigningMethodRS256, k.rsa, "rsa-1", c)},
		{"ES256", mint(b, jwt.SigningMethodES256, k.ec, "ec-1", c)},
		{"HS256", mint(b, jwt.SigningMethodHS256, testHS256Secret, "", c)},
	} {
		for _, cached := range []bool{false, true} {
			name := bc.name + "/uncached"
			size := -1
			if cached {
				name, size = bc.name+"/cached", 0
			}
			b.Run(name, func(b *testing.B) {
				a := newAuth(b, AuthOptions{HS256Secret: testHS256Secret, CacheSize: size})
				if _, err := a.verify(bc.token); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.verify(bc.token); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkOFREPSingleWithToken is BenchmarkOFREPSingle with an EdDSA
// context token, cached or not.
func BenchmarkOFREPSingleWithToken(b *testing.B) {
	tok := edToken(b, claims("shop", map[string]any{"targetingKey": "user-42", "orgId": "acme", "plan": "pro"}))
	for _, bc := range []struct {
		name  string
		cache int
	}{{"uncached", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			store, _ := newTestStore(b)
			h := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(b, AuthOptions{CacheSize: bc.cache})})
			const body = `{"context":{}}`
			rd := strings.NewReader(body)
			req := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/theme", rd)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "neon") {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = readCloser{rd}
				rec.Body.Reset()
				clear(rec.Header())
				rec.Code = 0
				h.ServeHTTP(rec, req)
			}
		})
	}
}
