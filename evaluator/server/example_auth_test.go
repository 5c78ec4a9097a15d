package server_test

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

// Example_contextToken mints a context token as a backend would (the
// snippet in docs/security.md) and evaluates a flag with it.
func Example_contextToken() {
	// The issuer's signing key; the evaluator gets only its public half.
	signing := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	keys, err := server.NewKeySet(server.Key{ID: "2026-07", Public: signing.Public()})
	if err != nil {
		panic(err)
	}
	auth, err := server.NewAuthenticator(server.AuthOptions{Keys: keys})
	if err != nil {
		panic(err)
	}
	store := evaluator.NewStore()
	if _, _, err := store.Apply(evaluator.UpsertFlag("shop", "checkout.layout", evaluator.FlagSpec{
		Type: evaluator.TypeString, Enabled: true, Value: []byte(`"classic"`),
		Rules: []evaluator.Rule{{Name: "pro", Value: []byte(`"single-page"`),
			Match: []evaluator.Condition{{Attribute: "plan", Operator: evaluator.OpIn, Values: []string{"pro"}}}}},
	})); err != nil {
		panic(err)
	}
	h := server.New(store, server.Options{DefaultNamespace: "shop", Auth: auth})

	// Mint: the whole context in ctx, bound to namespace shop, one hour.
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"aud": "flagops:shop",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
		"ctx": map[string]any{
			"userId": "user-42", "orgId": "acme", "role": "user",
			"deviceId": "tablet-7f3a", "deviceClass": "tablet",
			"plan": "pro",
		},
	})
	tok.Header["kid"] = "2026-07"
	signed, err := tok.SignedString(signing)
	if err != nil {
		panic(err)
	}

	// The request's own context is ignored: plan comes from the token.
	req := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/checkout.layout",
		strings.NewReader(`{"context":{"targetingKey":"someone-else","plan":"free"}}`))
	req.Header.Set("Authorization", "Bearer "+signed)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code, strings.Contains(rec.Body.String(), `"value":"single-page"`))
	// Output: 200 true
}
