package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testTokenKey = []byte("test-context-token-key-0123456789")

// token signs claims with method and key.
func token(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("signing a token: %v", err)
	}
	return s
}

func aliceClaims() jwt.MapClaims {
	return jwt.MapClaims{"userId": "alice", "orgId": "acme", "deviceId": "phone-1", "deviceClass": "mobile",
		"exp": time.Now().Add(time.Hour).Unix()}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// deviceRoutes are the routes that require a context token.
var deviceRoutes = []struct{ method, target, body string }{
	{http.MethodPost, "/ofrep/v1/evaluate/flags/theme", `{"context":{}}`},
	{http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`},
	{http.MethodPost, "/namespaces/other/ofrep/v1/evaluate/flags", `{"context":{}}`},
	{http.MethodPost, "/v1/evaluate", `{"context":{}}`},
	{http.MethodGet, "/v1/users/alice/flags", ""},
	{http.MethodGet, "/v1/flags/theme/explain", ""},
	{http.MethodGet, "/v1/stream", ""},
	{http.MethodGet, "/ofrep/v1/sse", ""},
}

func TestContextTokenRejected(t *testing.T) {
	h, _ := newTestHandler(t, Options{TokenKey: testTokenKey})
	hour := time.Hour
	bad := map[string][]string{
		"missing":    nil,
		"not bearer": {"Authorization", "Basic YWxpY2U6c2VjcmV0"},
		"garbage":    bearer("not-a-jwt"),
		"forged":     bearer(token(t, jwt.SigningMethodHS256, []byte("another-key"), aliceClaims())),
		"expired": bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{
			"userId": "alice", "exp": time.Now().Add(-hour).Unix()})),
		"not yet valid": bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{
			"userId": "alice", "nbf": time.Now().Add(hour).Unix()})),
		"alg none":            bearer(token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, aliceClaims())),
		"alg HS512":           bearer(token(t, jwt.SigningMethodHS512, testTokenKey, aliceClaims())),
		"userId not a string": bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{"userId": 42})),
	}
	for name, header := range bad {
		for _, rt := range deviceRoutes {
			rec := do(h, rt.method, rt.target, rt.body, header...)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s: %s %s: status %d, want 401: %s", name, rt.method, rt.target, rec.Code, rec.Body)
				continue
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: %s %s: WWW-Authenticate = %q", name, rt.method, rt.target, rec.Header().Get("WWW-Authenticate"))
			}
			m, _ := decodeJSON(t, rec.Body.String()).(map[string]any)
			if m["errorCode"] != "UNAUTHORIZED" || m["errorDetails"] == "" || m["errorDetails"] == nil {
				t.Errorf("%s: %s %s: body %s", name, rt.method, rt.target, rec.Body)
			}
		}
	}
	if rec := do(h, http.MethodGet, "/healthz", ""); rec.Code != http.StatusOK {
		t.Errorf("/healthz without a token: status %d, want 200", rec.Code)
	}
}

func TestContextTokenAccepted(t *testing.T) {
	h, _ := newTestHandler(t, Options{TokenKey: testTokenKey})
	auth := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, aliceClaims()))
	for _, rt := range deviceRoutes {
		if rt.method == http.MethodGet && strings.Contains(rt.target, "stream") || strings.HasSuffix(rt.target, "/sse") {
			continue // streams: TestContextTokenStream
		}
		if rec := do(h, rt.method, rt.target, rt.body, auth...); rec.Code != http.StatusOK {
			t.Errorf("%s %s: status %d, want 200: %s", rt.method, rt.target, rec.Code, rec.Body)
		}
	}
}

func TestContextTokenClaimsBeatRequest(t *testing.T) {
	h, _ := newTestHandler(t, Options{TokenKey: testTokenKey})
	alice := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, aliceClaims()))
	bob := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{"userId": "bob"}))
	const aliceSource = `"source":"user-override:shop/alice-beta"`

	rec := do(h, http.MethodPost, "/v1/evaluate", `{"context":{"userId":"bob","targetingKey":"bob"},"flags":["new-checkout"]}`, alice...)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), aliceSource) {
		t.Errorf("alice's token asking as bob: status %d, body %s; want alice's override", rec.Code, rec.Body)
	}
	rec = do(h, http.MethodPost, "/v1/evaluate", `{"context":{"userId":"alice","targetingKey":"alice"}}`, bob...)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "alice-beta") {
		t.Errorf("bob's token asking as alice: status %d, body %s; must not see alice's override", rec.Code, rec.Body)
	}
	rec = do(h, http.MethodPost, "/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"targetingKey":"alice"}}`, bob...)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "alice-beta") {
		t.Errorf("OFREP single, bob's token asking as alice: status %d, body %s", rec.Code, rec.Body)
	}
	rec = do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"bob"}}`, alice...)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), aliceSource) {
		t.Errorf("OFREP bulk, alice's token asking as bob: status %d, body %s", rec.Code, rec.Body)
	}
	rec = do(h, http.MethodGet, "/v1/flags/new-checkout/explain?userId=alice", "", bob...)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "alice-beta") || !strings.Contains(rec.Body.String(), `"bob"`) {
		t.Errorf("explain, bob's token asking as alice: status %d, body %s", rec.Code, rec.Body)
	}
}

func TestContextTokenUserView(t *testing.T) {
	h, _ := newTestHandler(t, Options{TokenKey: testTokenKey})
	alice := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, aliceClaims()))
	if rec := do(h, http.MethodGet, "/v1/users/alice/flags", "", alice...); rec.Code != http.StatusOK ||
		!strings.Contains(rec.Body.String(), "alice-beta") {
		t.Errorf("own view: status %d: %s", rec.Code, rec.Body)
	}
	rec := do(h, http.MethodGet, "/v1/users/bob/flags", "", alice...)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("another user's view: status %d, want 403: %s", rec.Code, rec.Body)
	}
	if m, _ := decodeJSON(t, rec.Body.String()).(map[string]any); m["errorCode"] != "FORBIDDEN" {
		t.Errorf("another user's view: body %s, want errorCode FORBIDDEN", rec.Body)
	}
	anon := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{"deviceId": "d1"}))
	if rec := do(h, http.MethodGet, "/v1/users/alice/flags", "", anon...); rec.Code != http.StatusForbidden {
		t.Errorf("token without userId: status %d, want 403", rec.Code)
	}
}

func TestContextTokenStream(t *testing.T) {
	srv, _ := newStreamServer(t, Options{TokenKey: testTokenKey}, nil)
	alice := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{"userId": "alice"}))
	// The query's ineligible device class is replaced by the token's (none).
	c := open(t, srv, "/v1/stream?userId=bob&deviceClass=charger", alice...)
	if ev := c.next(t); ev.event != "snapshot" || !strings.Contains(ev.data, `"source":"user-override:shop/alice-beta"`) {
		t.Errorf("alice's token asking as bob: first event %+v, want alice's snapshot", ev)
	}
	bob := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, jwt.MapClaims{"userId": "bob"}))
	c = open(t, srv, "/v1/stream?userId=alice", bob...)
	if ev := c.next(t); ev.event != "snapshot" || strings.Contains(ev.data, "alice-beta") {
		t.Errorf("bob's token asking as alice: first event %+v, must not hold alice's override", ev)
	}
	o := open(t, srv, "/ofrep/v1/sse?targetingKey=alice", bob...)
	o.quiet(t)
	resp, _ := get(t, srv, "/v1/stream?userId=alice")
	checkError(t, resp, http.StatusUnauthorized, "UNAUTHORIZED", "missing bearer token")
	if got := resp.Header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("WWW-Authenticate = %q, want Bearer", got)
	}
}

func TestCORS(t *testing.T) {
	h, _ := newTestHandler(t, Options{CORSAllowedOrigins: []string{"https://app.example"}, TokenKey: testTokenKey})
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

	auth := bearer(token(t, jwt.SigningMethodHS256, testTokenKey, aliceClaims()))
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
