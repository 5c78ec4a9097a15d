package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flagops/flagops/evaluator"
)

// keyFixture holds the private keys of the test key set, generated once
// per test binary.
type keyFixture struct {
	ed, edOther ed25519.PrivateKey
	rsa         *rsa.PrivateKey
	ec          *ecdsa.PrivateKey
	// set holds the public keys of ed ("ed-1"), rsa ("rsa-1") and ec
	// ("ec-1"); edOther is in no set.
	set *KeySet
}

var testKeys = sync.OnceValue(func() *keyFixture {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var f keyFixture
	var err error
	_, f.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, f.edOther, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	f.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	f.set, err = NewKeySet(
		Key{ID: "ed-1", Public: f.ed.Public()},
		Key{ID: "rsa-1", Public: &f.rsa.PublicKey},
		Key{ID: "ec-1", Alg: AlgES256, Public: &f.ec.PublicKey},
	)
	must(err)
	return &f
})

// testHS256Secret is 32 bytes, the minimum.
var testHS256Secret = []byte("0123456789abcdef0123456789abcdef")

// mint signs claims with method and key, with kid in the header unless
// it is empty.
func mint(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing a token: %v", err)
	}
	return s
}

// claims returns device claims for namespace ns with context ctx, valid
// for an hour.
func claims(ns string, ctx map[string]any) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"aud": AudiencePrefix + ns, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ctx": ctx}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// edToken signs c with the test set's Ed25519 key.
func edToken(t testing.TB, c jwt.MapClaims) string {
	return mint(t, jwt.SigningMethodEdDSA, testKeys().ed, "ed-1", c)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

var (
	aliceCtx = map[string]any{"userId": "alice", "orgId": "acme"}
	adminCtx = map[string]any{"userId": "ops-1"}
)

func adminClaims(ns string) jwt.MapClaims {
	return with(claims(ns, adminCtx), "scope", "openid "+ScopeAdmin)
}

func newAuth(t testing.TB, o AuthOptions) *Authenticator {
	t.Helper()
	if o.Keys == nil {
		o.Keys = testKeys().set
	}
	a, err := NewAuthenticator(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// addAuthFixture adds flag team-rollout (50% bucketed by the free
// attribute team) and returns a team inside the rollout and one outside.
func addAuthFixture(t *testing.T, store *evaluator.Store) (in, out string) {
	t.Helper()
	if _, _, err := store.Apply(evaluator.UpsertFlag("shop", "team-rollout", evaluator.FlagSpec{
		Type: evaluator.TypeBoolean, Enabled: true, Rollout: &evaluator.Rollout{Percentage: 50, BucketBy: "team"},
	})); err != nil {
		t.Fatal(err)
	}
	for i := 0; in == "" || out == ""; i++ {
		team := fmt.Sprintf("team-%d", i)
		if evaluator.Bucket("team-rollout", team) < 50 {
			in = team
		} else {
			out = team
		}
	}
	return in, out
}

func TestHostileTokens(t *testing.T) {
	k := testKeys()
	store, _ := newTestStore(t)
	teamIn, teamOut := addAuthFixture(t, store)
	h := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{})})
	settable := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{ClientSettable: []string{"plan", "team"}})})
	hs := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{HS256Secret: testHS256Secret})})
	rsaPub, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	shop := claims("shop", aliceCtx)

	tests := []struct {
		name         string
		h            http.Handler // nil: h
		method       string       // "" : POST
		target, body string
		token        string // "" : no Authorization header
		status       int
		code         string
		details      string // in errorDetails, or in the body for 200
		notInBody    string
	}{
		{name: "no token", target: "/v1/evaluate", status: 401, code: "UNAUTHORIZED", details: "missing bearer token"},
		{name: "garbage", target: "/v1/evaluate", token: "not-a-jwt", status: 401, code: "UNAUTHORIZED", details: "invalid context token"},
		{name: "token too large", target: "/v1/evaluate", token: strings.Repeat("a", 9<<10), status: 401, code: "UNAUTHORIZED", details: "more than 8192"},

		// Namespace binding.
		{name: "wrong namespace", target: "/namespaces/other/v1/evaluate", token: edToken(t, shop),
			status: 401, code: "UNAUTHORIZED", details: `not for namespace "other" (its aud must contain "flagops:other")`},
		{name: "token for another namespace on the default one", target: "/v1/evaluate", token: edToken(t, claims("other", aliceCtx)),
			status: 401, code: "UNAUTHORIZED", details: `not for namespace "shop"`},
		{name: "no aud", target: "/v1/evaluate", token: edToken(t, with(shop, "aud", nil)), status: 401, code: "UNAUTHORIZED", details: "not for namespace"},
		{name: "aud list with the namespace", target: "/namespaces/other/v1/evaluate",
			token: edToken(t, with(shop, "aud", []string{"flagops:shop", "flagops:other"})), status: 200, details: `"greeting"`},

		// Times.
		{name: "no exp", target: "/v1/evaluate", token: edToken(t, with(shop, "exp", nil)), status: 401, code: "UNAUTHORIZED", details: "exp claim is required"},
		{name: "exp beyond the maximum lifetime", target: "/v1/evaluate", token: edToken(t, with(shop, "exp", now.Add(25*time.Hour).Unix())),
			status: 401, code: "UNAUTHORIZED", details: "exceeds the maximum 24h0m0s"},
		{name: "exp beyond the maximum lifetime, no iat", target: "/v1/evaluate",
			token: edToken(t, with(shop, "iat", nil, "exp", now.Add(30*24*time.Hour).Unix())), status: 401, code: "UNAUTHORIZED", details: "(exp - now) exceeds"},
		{name: "iat long ago", target: "/v1/evaluate",
			token: edToken(t, with(shop, "iat", now.Add(-48*time.Hour).Unix())), status: 401, code: "UNAUTHORIZED", details: "(exp - iat) exceeds"},
		{name: "expired", target: "/v1/evaluate", token: edToken(t, with(shop, "iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix())),
			status: 401, code: "UNAUTHORIZED", details: "token is expired"},
		{name: "not yet valid", target: "/v1/evaluate", token: edToken(t, with(shop, "nbf", now.Add(time.Hour).Unix())),
			status: 401, code: "UNAUTHORIZED", details: "token is not valid yet"},
		{name: "issued in the future", target: "/v1/evaluate", token: edToken(t, with(shop, "iat", now.Add(time.Hour).Unix(), "exp", now.Add(2*time.Hour).Unix())),
			status: 401, code: "UNAUTHORIZED", details: "token used before issued"},

		// The context comes from the token.
		{name: "spoofed free attribute", target: "/ofrep/v1/evaluate/flags/theme", body: `{"context":{"plan":"pro"}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob"})), status: 200, details: `"value":"dark"`},
		{name: "free attribute from the token", target: "/ofrep/v1/evaluate/flags/theme", body: `{"context":{}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob", "plan": "pro"})), status: 200, details: `"value":"neon"`},
		{name: "client-settable attribute from the request", h: settable, target: "/ofrep/v1/evaluate/flags/theme", body: `{"context":{"plan":"pro"}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob"})), status: 200, details: `"value":"neon"`},
		{name: "the token beats a client-settable attribute", h: settable, target: "/ofrep/v1/evaluate/flags/theme", body: `{"context":{"plan":"pro"}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob", "plan": "free"})), status: 200, details: `"value":"dark"`},
		{name: "spoofed bucketBy attribute", target: "/ofrep/v1/evaluate/flags/team-rollout", body: `{"context":{"team":"` + teamIn + `"}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob", "team": teamOut})), status: 200, details: `"value":false`},
		{name: "bucketBy attribute absent from the token", target: "/ofrep/v1/evaluate/flags/team-rollout", body: `{"context":{"team":"` + teamIn + `"}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob"})), status: 200, details: `"value":false`},
		{name: "spoofed identity", target: "/v1/evaluate", body: `{"context":{"userId":"bob","targetingKey":"bob"},"flags":["new-checkout"]}`,
			token: edToken(t, shop), status: 200, details: `"source":"user-override:shop/alice-beta"`},
		{name: "spoofed identity in OFREP bulk", target: "/ofrep/v1/evaluate/flags", body: `{"context":{"targetingKey":"alice"}}`,
			token: edToken(t, claims("shop", map[string]any{"userId": "bob"})), status: 200, notInBody: "alice-beta"},
		{name: "context attributes as top-level claims", target: "/v1/evaluate", token: edToken(t, with(shop, "userId", "alice")),
			status: 401, code: "UNAUTHORIZED", details: "inside the ctx claim"},
		{name: "ctx not an object", target: "/v1/evaluate", token: edToken(t, with(shop, "ctx", "alice")), status: 401, code: "UNAUTHORIZED", details: "invalid context token"},
		{name: "ctx userId not a string", target: "/v1/evaluate", token: edToken(t, claims("shop", map[string]any{"userId": 42})),
			status: 401, code: "UNAUTHORIZED", details: "context.userId: must be a string"},

		// Device classes (seed 000).
		{name: "device without deviceClass", target: "/v1/evaluate", token: edToken(t, claims("shop", map[string]any{"userId": "alice", "deviceId": "c1"})),
			status: 401, code: "UNAUTHORIZED", details: "deviceClass is required with deviceId"},
		{name: "charger", target: "/v1/evaluate", token: edToken(t, claims("shop", map[string]any{"userId": "alice", "deviceId": "c1", "deviceClass": "charger"})),
			status: 403, code: "DEVICE_CLASS_NOT_ELIGIBLE", details: `device class "charger" is not eligible`},
		{name: "charger stream", method: http.MethodGet, target: "/v1/stream",
			token: edToken(t, claims("shop", map[string]any{"userId": "alice", "deviceId": "c1", "deviceClass": "charger"})), status: 403, code: "DEVICE_CLASS_NOT_ELIGIBLE"},
		{name: "charger without a device id", target: "/ofrep/v1/evaluate/flags", token: edToken(t, claims("shop", map[string]any{"userId": "alice", "deviceClass": "charger"})),
			status: 403, code: "DEVICE_CLASS_NOT_ELIGIBLE"},

		// Algorithms and keys.
		{name: "HS256 when asymmetric keys are configured", target: "/v1/evaluate", token: mint(t, jwt.SigningMethodHS256, testHS256Secret, "", shop),
			status: 401, code: "UNAUTHORIZED", details: "signing method HS256 is invalid"},
		{name: "HS256 keyed with the RSA public key", h: hs, target: "/v1/evaluate", token: mint(t, jwt.SigningMethodHS256, rsaPub, "rsa-1", shop),
			status: 401, code: "UNAUTHORIZED", details: "signature is invalid"},
		{name: "HS256 with the opt-in secret", h: hs, target: "/v1/evaluate", token: mint(t, jwt.SigningMethodHS256, testHS256Secret, "", shop), status: 200},
		{name: "HS512", h: hs, target: "/v1/evaluate", token: mint(t, jwt.SigningMethodHS512, testHS256Secret, "", shop),
			status: 401, code: "UNAUTHORIZED", details: "signing method HS512 is invalid"},
		{name: "alg none", target: "/v1/evaluate", token: mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "ed-1", shop),
			status: 401, code: "UNAUTHORIZED", details: "signing method none is invalid"},
		{name: "unknown kid", target: "/v1/evaluate", token: mint(t, jwt.SigningMethodEdDSA, k.ed, "ed-0", shop),
			status: 401, code: "UNAUTHORIZED", details: `unknown key ID (kid) "ed-0"`},
		{name: "no kid with several keys", target: "/v1/evaluate", token: mint(t, jwt.SigningMethodEdDSA, k.ed, "", shop),
			status: 401, code: "UNAUTHORIZED", details: "no kid header"},
		{name: "kid of a key of another type", target: "/v1/evaluate", token: mint(t, jwt.SigningMethodES256, k.ec, "rsa-1", shop),
			status: 401, code: "UNAUTHORIZED", details: `key "rsa-1" is a RS256 key`},
		{name: "forged: signed by a key not in the set", target: "/v1/evaluate", token: mint(t, jwt.SigningMethodEdDSA, k.edOther, "ed-1", shop),
			status: 401, code: "UNAUTHORIZED", details: "signature is invalid"},

		// Admin routes.
		{name: "device token on explain", method: http.MethodGet, target: "/v1/flags/theme/explain", token: edToken(t, shop),
			status: 403, code: "FORBIDDEN", details: "needs an admin token"},
		{name: "device token on the user view", method: http.MethodGet, target: "/v1/users/alice/flags", token: edToken(t, shop),
			status: 403, code: "FORBIDDEN", details: "scope flagops:admin"},
		{name: "device token on the device view", method: http.MethodGet, target: "/v1/devices/d1/flags?deviceClass=phone", token: edToken(t, shop),
			status: 403, code: "FORBIDDEN"},
		{name: "admin token of another namespace", method: http.MethodGet, target: "/v1/flags/theme/explain", token: edToken(t, adminClaims("other")),
			status: 401, code: "UNAUTHORIZED", details: `not for namespace "shop"`},
		{name: "no token on explain", method: http.MethodGet, target: "/v1/flags/theme/explain", status: 401, code: "UNAUTHORIZED"},
		{name: "admin token on explain", method: http.MethodGet, target: "/v1/flags/theme/explain?userId=bob&attr.plan=pro", token: edToken(t, adminClaims("shop")),
			status: 200, details: `"source":"rule:pro"`},
		{name: "admin scope as an array", method: http.MethodGet, target: "/v1/users/alice/flags?role=admin",
			token: edToken(t, with(claims("shop", nil), "scope", []string{ScopeAdmin})), status: 200, details: `"admin-panel"`},
		{name: "scope of the wrong type", method: http.MethodGet, target: "/v1/users/alice/flags",
			token: edToken(t, with(claims("shop", nil), "scope", 7)), status: 401, code: "UNAUTHORIZED", details: "scope"},

		// access_token only on the stream routes.
		{name: "access_token on evaluate", target: "/v1/evaluate?access_token=" + edToken(t, shop), status: 400, code: "INVALID_QUERY",
			details: "access_token is accepted only by GET /v1/stream and GET /ofrep/v1/sse"},
		{name: "access_token on explain", method: http.MethodGet, target: "/v1/flags/theme/explain?access_token=" + edToken(t, adminClaims("shop")),
			status: 400, code: "INVALID_QUERY", details: "access_token is accepted only"},
		{name: "the header wins over access_token", method: http.MethodGet, target: "/v1/stream?access_token=" + edToken(t, shop), token: "forged",
			status: 401, code: "UNAUTHORIZED", details: "invalid context token"},
		{name: "access_token twice", method: http.MethodGet, target: "/v1/stream?access_token=a&access_token=b",
			status: 400, code: "INVALID_QUERY", details: `"access_token" is given 2 times`},
		{name: "empty access_token", method: http.MethodGet, target: "/v1/stream?access_token=", status: 401, code: "UNAUTHORIZED", details: "missing bearer token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler, method, body := tc.h, tc.method, tc.body
			if handler == nil {
				handler = h
			}
			if method == "" {
				method = http.MethodPost
				if body == "" {
					body = `{"context":{}}`
				}
			}
			var header []string
			if tc.token != "" {
				header = bearer(tc.token)
			}
			if tc.status == 200 && strings.Contains(tc.target, "stream") {
				t.Fatal("streams do not end: test them in TestStreamTokens")
			}
			rec := do(handler, method, tc.target, body, header...)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 {
				if !strings.Contains(rec.Body.String(), tc.details) || (tc.notInBody != "" && strings.Contains(rec.Body.String(), tc.notInBody)) {
					t.Errorf("body %s: want %q in it and not %q", rec.Body, tc.details, tc.notInBody)
				}
				return
			}
			check(t, rec, tc.status, "", tc.code, tc.details)
			switch tc.status {
			case 401:
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
				}
			case 403:
				if tc.code == "FORBIDDEN" && !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
				}
			}
		})
	}
	if rec := do(h, http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("/healthz without a token: status %d, want 200", rec.Code)
	}
}

func TestNewAuthenticator(t *testing.T) {
	tests := []struct {
		name    string
		opts    AuthOptions
		wantErr string
	}{
		{name: "no keys", opts: AuthOptions{}, wantErr: "no keys"},
		{name: "HS256 secret too short", opts: AuthOptions{HS256Secret: testHS256Secret[:31]}, wantErr: "the HS256 secret is 31 bytes, fewer than 32"},
		{name: "HS256 secret alone", opts: AuthOptions{HS256Secret: testHS256Secret}},
		{name: "keys", opts: AuthOptions{Keys: testKeys().set, MaxLifetime: time.Hour, ClientSettable: []string{"plan"}}},
		{name: "negative lifetime", opts: AuthOptions{Keys: testKeys().set, MaxLifetime: -time.Second}, wantErr: "negative"},
		{name: "well-known attribute settable", opts: AuthOptions{Keys: testKeys().set, ClientSettable: []string{"plan", "deviceClass"}},
			wantErr: `client-settable attribute "deviceClass": well-known attributes come from the token only`},
		{name: "empty settable name", opts: AuthOptions{Keys: testKeys().set, ClientSettable: []string{" "}}, wantErr: "empty client-settable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAuthenticator(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Keys() != tc.opts.Keys || strings.Join(a.ClientSettable(), ",") != strings.Join(tc.opts.ClientSettable, ",") {
				t.Errorf("keys %v, settable %v", a.Keys(), a.ClientSettable())
			}
		})
	}
}

func TestTokenAlgorithms(t *testing.T) {
	k := testKeys()
	single, err := NewKeySet(Key{Public: k.ed.Public()})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := newTestStore(t)
	h := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{HS256Secret: testHS256Secret})})
	one := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{Keys: single})})
	c := claims("shop", aliceCtx)
	tests := []struct {
		name  string
		h     http.Handler
		token string
	}{
		{"EdDSA", h, mint(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", c)},
		{"RS256", h, mint(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", c)},
		{"ES256", h, mint(t, jwt.SigningMethodES256, k.ec, "ec-1", c)},
		{"HS256 opted in", h, mint(t, jwt.SigningMethodHS256, testHS256Secret, "", c)},
		{"no kid, one key", one, mint(t, jwt.SigningMethodEdDSA, k.ed, "", c)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, rt := range []struct{ method, target, body string }{
				{http.MethodPost, "/ofrep/v1/evaluate/flags/new-checkout", `{"context":{}}`},
				{http.MethodPost, "/namespaces/shop/ofrep/v1/evaluate/flags", `{}`},
				{http.MethodPost, "/v1/evaluate", `{"context":{"userId":"bob"}}`},
			} {
				rec := do(tc.h, rt.method, rt.target, rt.body, bearer(tc.token)...)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "user-override:shop/alice-beta") {
					t.Errorf("%s %s: status %d, body %s; want alice's override", rt.method, rt.target, rec.Code, rec.Body)
				}
			}
		})
	}
}

// streamStart opens a stream and returns its response and the data of its
// first event.
func streamStart(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeOrFail(t, resp.Body) })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return resp, data
		}
	}
	t.Fatalf("GET %s: the stream ended without an event: %v", path, sc.Err())
	return nil, ""
}

func TestStreamTokens(t *testing.T) {
	store, _ := newTestStore(t)
	opts := Options{DefaultNamespace: "shop", Heartbeat: time.Hour, Auth: newAuth(t, AuthOptions{})}
	srv := httptest.NewServer(New(store, opts))
	t.Cleanup(srv.Close)
	alice := edToken(t, claims("shop", map[string]any{"userId": "alice", "deviceId": "p1", "deviceClass": "phone"}))

	// The query's identity is replaced by the token's.
	resp, data := streamStart(t, srv, "/v1/stream?userId=bob&deviceClass=charger", bearer(alice)...)
	if resp.StatusCode != http.StatusOK || !strings.Contains(data, `"source":"user-override:shop/alice-beta"`) {
		t.Errorf("header token: status %d, first event %s; want alice's snapshot", resp.StatusCode, data)
	}
	// EventSource cannot send headers: access_token in the query.
	resp, data = streamStart(t, srv, "/v1/stream?userId=bob&access_token="+url.QueryEscape(alice))
	if resp.StatusCode != http.StatusOK || !strings.Contains(data, `"source":"user-override:shop/alice-beta"`) {
		t.Errorf("access_token: status %d, first event %s; want alice's snapshot", resp.StatusCode, data)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("access_token: Cache-Control %q, want no-store", cc)
	}
	// A fresh header token beats a stale (here: forged) one in the URI.
	resp, data = streamStart(t, srv, "/v1/stream?access_token=forged", bearer(alice)...)
	if resp.StatusCode != http.StatusOK || !strings.Contains(data, "alice-beta") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("header and access_token: status %d, Cache-Control %q, first event %s", resp.StatusCode, resp.Header.Get("Cache-Control"), data)
	}
	ofrep := httptest.NewServer(New(store, opts))
	t.Cleanup(ofrep.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ofrep.URL+"/namespaces/shop/ofrep/v1/sse?access_token="+alice, nil)
	r2, err := ofrep.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, r2.Body)
	if r2.StatusCode != http.StatusOK || r2.Header.Get("Cache-Control") != "no-store" || r2.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("OFREP access_token: status %d, headers %v", r2.StatusCode, r2.Header)
	}

	// Without a token the stream is refused.
	resp, body := streamStart(t, srv, "/v1/stream?userId=alice")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" || !strings.Contains(body, "missing bearer token") {
		t.Errorf("no token: status %d, WWW-Authenticate %q, body %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	// A bad access_token is refused, also with no-store.
	resp, _ = streamStart(t, srv, "/v1/stream?access_token=forged")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("forged access_token: status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func TestOpenStreams(t *testing.T) {
	store, _ := newTestStore(t)
	srv := httptest.NewServer(New(store, Options{DefaultNamespace: "shop", Heartbeat: time.Hour}))
	t.Cleanup(srv.Close)
	resp, body := streamStart(t, srv, "/v1/stream?userId=alice&deviceId=p1")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `query parameter \"deviceClass\" is required with \"deviceId\"`) {
		t.Errorf("device without class: status %d, body %s; want 400 naming deviceClass", resp.StatusCode, body)
	}
	// The same with the context as one JSON parameter, as the advertised OFREP stream URI has it.
	resp, body = streamStart(t, srv, "/ofrep/v1/sse?context="+url.QueryEscape(`{"userId":"alice","deviceId":"p1"}`))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `query parameter \"deviceClass\" is required with \"deviceId\"`) {
		t.Errorf("device without class in the context parameter: status %d, body %s; want 400 naming deviceClass", resp.StatusCode, body)
	}
	// An access_token is ignored when serving is open, but still kept out
	// of caches.
	resp, data := streamStart(t, srv, "/v1/stream?userId=alice&deviceId=p1&deviceClass=phone&access_token=x")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(data, "alice-beta") {
		t.Errorf("open stream with access_token: status %d, Cache-Control %q, data %s", resp.StatusCode, resp.Header.Get("Cache-Control"), data)
	}
	if rec := do(New(store, Options{DefaultNamespace: "shop"}), http.MethodPost, "/v1/evaluate?access_token=x", `{}`); rec.Code != http.StatusBadRequest {
		t.Errorf("open evaluate with access_token: status %d, want 400", rec.Code)
	}
}

func TestRequestToken(t *testing.T) {
	store, _ := newTestStore(t)
	s := &server{store: store, opts: Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{})}}
	var got []string
	record := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = append(got, s.requestToken(r))
		if strings.Contains(r.URL.RawQuery, paramAccessToken) || strings.Contains(r.RequestURI, paramAccessToken) {
			t.Errorf("the route sees the access_token: %q", r.RequestURI)
		}
	})
	tok := edToken(t, claims("shop", aliceCtx))
	h := s.withAuth(accessStream, false, record)
	do(h, http.MethodGet, "/v1/stream?userId=x", "", bearer(tok)...)
	do(h, http.MethodGet, "/v1/stream?userId=x&access_token="+tok, "")
	if len(got) != 2 || got[0] != tok || got[1] != tok {
		t.Errorf("requestToken = %q, want the token twice", got)
	}
	open := &server{store: store, opts: Options{DefaultNamespace: "shop"}}
	got = nil
	open.withAuth(accessStream, false, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = append(got, open.requestToken(r))
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/v1/stream?access_token="+tok, nil))
	if len(got) != 1 || got[0] != "" {
		t.Errorf("open serving: requestToken = %q, want \"\"", got)
	}
}

func TestTokenCache(t *testing.T) {
	k := testKeys()
	now := time.Now()
	a := newAuth(t, AuthOptions{Now: func() time.Time { return now }, CacheSize: 2})
	store, _ := newTestStore(t)
	h := New(store, Options{DefaultNamespace: "shop", Auth: a})
	// issued are claims issued at the authenticator's frozen clock: a token issued at the
	// wall clock's next second would be refused as issued in the future.
	issued := func(ctx map[string]any) jwt.MapClaims { return with(claims("shop", ctx), "iat", now.Unix()) }
	tok := edToken(t, with(issued(aliceCtx), "exp", now.Add(time.Minute).Unix()))
	call := func(tok string) int { return do(h, http.MethodPost, "/v1/evaluate", `{}`, bearer(tok)...).Code }

	if got := call(tok); got != http.StatusOK || a.cache.len() != 1 {
		t.Fatalf("first use: status %d, cached %d; want 200 and 1", got, a.cache.len())
	}
	if v := a.cache.get(tok, a.Keys(), now); v == nil || v.ctx.UserID != "alice" {
		t.Fatalf("cache entry %+v", v)
	}
	// Bounded: a third token evicts one entry.
	call(edToken(t, issued(map[string]any{"userId": "b"})))
	call(edToken(t, issued(map[string]any{"userId": "c"})))
	if n := a.cache.len(); n != 2 {
		t.Errorf("cache holds %d tokens, want the bound 2", n)
	}
	// A cached token stops working at its exp.
	call(tok)
	now = now.Add(time.Minute)
	if got := call(tok); got != http.StatusUnauthorized {
		t.Errorf("after exp: status %d, want 401", got)
	}
	// New keys drop verified tokens signed by a key they no longer hold.
	now = time.Now()
	tok = edToken(t, issued(aliceCtx))
	if got := call(tok); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	rsaOnly, err := NewKeySet(Key{ID: "rsa-1", Public: &k.rsa.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	a.SetKeys(rsaOnly)
	if a.cache.len() != 0 {
		t.Errorf("SetKeys left %d cached tokens", a.cache.len())
	}
	if got := call(tok); got != http.StatusUnauthorized {
		t.Errorf("after the key was removed: status %d, want 401", got)
	}
	// A verification that raced with SetKeys is not served from the cache.
	a.SetKeys(k.set)
	old := k.set
	call(tok)
	a.SetKeys(rsaOnly)
	a.cache.put(&verifiedToken{raw: tok, keys: old, exp: now.Add(time.Hour)})
	if got := call(tok); got != http.StatusUnauthorized {
		t.Errorf("entry verified with old keys: status %d, want 401", got)
	}

	off := newAuth(t, AuthOptions{CacheSize: -1})
	h = New(store, Options{DefaultNamespace: "shop", Auth: off})
	if rec := do(h, http.MethodPost, "/v1/evaluate", `{}`, bearer(edToken(t, claims("shop", aliceCtx)))...); rec.Code != http.StatusOK || off.cache != nil {
		t.Errorf("without a cache: status %d", rec.Code)
	}
}

func TestAdminViewsNeedAdminTokens(t *testing.T) {
	store, _ := newTestStore(t)
	addAdminFixture(t, store)
	h := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{})})
	admin := bearer(edToken(t, adminClaims("shop")))
	rec := do(h, http.MethodGet, "/v1/devices/tab-1/flags?deviceClass=tablet&userId=alice", "", admin...)
	var got viewBody
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	// The admin's own context (ops-1) plays no part: the view is alice's.
	if f := got.Flags["theme"]; f.SourceKind != "device-override" || got.Context.UserID != "alice" {
		t.Errorf("theme %+v, context %+v", f, got.Context)
	}
	rec = do(h, http.MethodGet, "/namespaces/other/v1/users/bob/flags", "", bearer(edToken(t, adminClaims("other")))...)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"greeting"`) {
		t.Errorf("admin of other: status %d: %s", rec.Code, rec.Body)
	}
}

func TestCORS(t *testing.T) {
	h, _ := newTestHandler(t, Options{CORSAllowedOrigins: []string{"https://app.example"}, Auth: newAuth(t, AuthOptions{})})
	pre := do(h, http.MethodOptions, "/ofrep/v1/evaluate/flags", "",
		"Origin", "https://app.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	if pre.Code != http.StatusNoContent {
		t.Fatalf("preflight: status %d, want 204: %s", pre.Code, pre.Body)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "https://app.example",
		"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
		"Access-Control-Allow-Headers": "Content-Type, Authorization, If-None-Match, Last-Event-ID",
		"Access-Control-Max-Age":       "600",
	}
	for k, v := range want {
		if got := pre.Header().Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(strings.Join(pre.Header().Values("Vary"), ","), "Origin") {
		t.Errorf("preflight Vary = %q, want Origin", pre.Header().Values("Vary"))
	}

	evil := do(h, http.MethodOptions, "/ofrep/v1/evaluate/flags", "",
		"Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := evil.Header().Get("Access-Control-Allow-Origin"); got != "" || evil.Header().Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight from another origin: Allow-Origin %q, Allow-Methods %q; want none", got, evil.Header().Get("Access-Control-Allow-Methods"))
	}

	auth := bearer(edToken(t, claims("shop", aliceCtx)))
	rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`, append([]string{"Origin", "https://app.example"}, auth...)...)
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" ||
		rec.Header().Get("Access-Control-Expose-Headers") != "ETag" || rec.Header().Get("Vary") != "Origin" {
		t.Errorf("allowed origin: status %d, headers %v", rec.Code, rec.Header())
	}
	rec = do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`, "Origin", "https://app.example")
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("401 to an allowed origin: status %d, Allow-Origin %q; browsers must be able to read it", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	rec = do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`, append([]string{"Origin", "https://evil.example"}, auth...)...)
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "" || rec.Header().Get("Access-Control-Expose-Headers") != "" {
		t.Errorf("other origin: status %d, headers %v; want no CORS grant", rec.Code, rec.Header())
	}

	wild, _ := newTestHandler(t, Options{CORSAllowedOrigins: []string{"*"}})
	rec = do(wild, http.MethodGet, "/healthz", "", "Origin", "https://whoever.example")
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("wildcard: Allow-Origin = %q, want *", got)
	}
	if rec := do(wild, http.MethodOptions, "/v1/evaluate", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("OPTIONS without Origin: status %d, want the route's 405", rec.Code)
	}

	off, _ := newTestHandler(t, Options{})
	rec = do(off, http.MethodGet, "/healthz", "", "Origin", "https://app.example")
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no CORS configured: Allow-Origin = %q, want none", got)
	}
}

// evalMetrics counts Evaluated calls by reason.
type evalMetrics struct {
	noMetrics
	mu      sync.Mutex
	reasons map[string]int
}

func (m *evalMetrics) Evaluated(reason string) {
	m.mu.Lock()
	m.reasons[reason]++
	m.mu.Unlock()
}

func (m *evalMetrics) take() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.reasons
	m.reasons = map[string]int{}
	return r
}

func TestEvaluatedMetrics(t *testing.T) {
	m := &evalMetrics{reasons: map[string]int{}}
	h, _ := newTestHandler(t, Options{Metrics: m})
	total := func(r map[string]int) (n int) {
		for _, v := range r {
			n += v
		}
		return n
	}

	if rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags/theme", `{"context":{"plan":"pro"}}`); rec.Code != http.StatusOK {
		t.Fatalf("single: status %d", rec.Code)
	}
	if got := m.take(); total(got) != 1 || got["TARGETING_MATCH"] != 1 {
		t.Errorf("single: Evaluated %v, want one TARGETING_MATCH", got)
	}
	if rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags/missing", `{}`); rec.Code != http.StatusNotFound {
		t.Fatalf("single, unknown flag: status %d", rec.Code)
	}
	if got := m.take(); total(got) != 0 {
		t.Errorf("unknown flag: Evaluated %v, want nothing", got)
	}

	rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{}`)
	var bulk struct{ Flags []any }
	if err := json.Unmarshal(rec.Body.Bytes(), &bulk); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("bulk: status %d, %v", rec.Code, err)
	}
	if got := m.take(); total(got) != len(bulk.Flags) || len(bulk.Flags) == 0 || got["DISABLED"] == 0 {
		t.Errorf("bulk: Evaluated %v, want one per flag of %d with banner DISABLED", got, len(bulk.Flags))
	}

	rec = do(h, http.MethodPost, "/v1/evaluate", `{"flags":["theme","banner","nope"]}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("native: status %d", rec.Code)
	}
	if got := m.take(); total(got) != 3 || got["STATIC"] != 1 || got["DISABLED"] != 1 || got["ERROR"] != 1 {
		t.Errorf("native: Evaluated %v, want STATIC, DISABLED and ERROR once each", got)
	}
}
