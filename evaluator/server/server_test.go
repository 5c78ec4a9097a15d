package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

var testNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// newTestStore builds the fixture: namespace shop (the default namespace),
// namespace other, and namespace ghost that only holds an override.
func newTestStore(t testing.TB) (*evaluator.Store, *time.Time) {
	t.Helper()
	now := testNow
	store := evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return now })))
	expires := testNow.Add(time.Hour)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	_, _, err := store.Apply(
		evaluator.UpsertFlag("shop", "new-checkout", evaluator.FlagSpec{
			Type: evaluator.TypeBoolean, Enabled: true, Rollout: &evaluator.Rollout{Percentage: 25},
		}),
		evaluator.UpsertFlag("shop", "banner", evaluator.FlagSpec{
			Type: evaluator.TypeString, Enabled: false, Value: raw(`"hello"`),
		}),
		evaluator.UpsertFlag("shop", "theme", evaluator.FlagSpec{
			Type: evaluator.TypeString, Enabled: true, Value: raw(`"dark"`), OffValue: raw(`"light"`),
			Rules: []evaluator.Rule{{Name: "pro", Match: []evaluator.Condition{
				{Attribute: "plan", Operator: evaluator.OpIn, Values: []string{"pro"}},
			}, Value: raw(`"neon"`)}},
		}),
		evaluator.UpsertFlag("shop", "admin-panel", evaluator.FlagSpec{
			Type: evaluator.TypeBoolean, Enabled: true, AllowedRoles: []string{"admin"},
		}),
		evaluator.UpsertFlag("shop", "broken", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true}),
		evaluator.UpsertFlag("shop", "limits", evaluator.FlagSpec{
			Type: evaluator.TypeObject, Enabled: true, Value: raw(`{"maxItems":50}`),
		}),
		evaluator.UpsertFlag("other", "greeting", evaluator.FlagSpec{
			Type: evaluator.TypeString, Enabled: true, Value: raw(`"hi"`),
		}),
		evaluator.UpsertOverride(evaluator.Override{
			Kind: evaluator.SubjectUser, SubjectID: "alice", Namespace: "shop", Name: "alice-beta",
			CreatedAt: testNow.Add(-time.Hour), Enabled: true, ExpiresAt: &expires, Reason: "beta tester",
			Entries: []evaluator.OverrideEntry{
				{Key: "new-checkout", Value: raw(`true`)},
				{Key: "admin-panel"},
			},
		}),
		evaluator.UpsertOverride(evaluator.Override{
			Kind: evaluator.SubjectUser, SubjectID: "alice", Namespace: "ghost", Name: "orphan",
			CreatedAt: testNow, Enabled: true,
			Entries: []evaluator.OverrideEntry{{Key: "nothing"}},
		}),
	)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return store, &now
}

func newTestHandler(t testing.TB, opts Options) (http.Handler, *evaluator.Store) {
	t.Helper()
	store, _ := newTestStore(t)
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "shop"
	}
	return New(store, opts), store
}

func do(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	var req *http.Request
	if body == "" {
		req = httptest.NewRequest(method, target, nil)
	} else {
		req = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", s, err)
	}
	return v
}

// check asserts the status, that the body is JSON, and either an exact
// JSON body or the errorCode and a substring of errorDetails.
func check(t *testing.T, rec *httptest.ResponseRecorder, status int, wantJSON, wantCode, wantDetails string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	got := decodeJSON(t, rec.Body.String())
	if wantJSON != "" {
		if want := decodeJSON(t, wantJSON); !reflect.DeepEqual(got, want) {
			t.Errorf("body = %s\nwant   %s", rec.Body, wantJSON)
		}
	}
	if wantCode != "" {
		m, _ := got.(map[string]any)
		if m["errorCode"] != wantCode {
			t.Errorf("errorCode = %v, want %s; body %s", m["errorCode"], wantCode, rec.Body)
		}
		if d, _ := m["errorDetails"].(string); !strings.Contains(d, wantDetails) {
			t.Errorf("errorDetails = %q, want it to contain %q", d, wantDetails)
		}
	}
}

func TestOFREPSingle(t *testing.T) {
	h, _ := newTestHandler(t, Options{})
	tests := []struct {
		name, path, body string
		status           int
		wantJSON         string
		wantCode         string
		wantDetails      string
	}{
		{"override", "/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"targetingKey":"alice"}}`, 200,
			`{"key":"new-checkout","value":true,"reason":"TARGETING_MATCH","variant":"override","metadata":{"source":"user-override:shop/alice-beta","enabled":true,"overrideExpiresAt":"2030-01-01T13:00:00Z","overrideReason":"beta tester"}}`, "", ""},
		{"rollout off", "/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"userId":"bob"}}`, 200,
			`{"key":"new-checkout","value":false,"reason":"SPLIT","variant":"off","metadata":{"source":"rollout","enabled":false}}`, "", ""},
		{"namespaced prefix", "/namespaces/shop/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"userId":"mallory"}}`, 200,
			`{"key":"new-checkout","value":true,"reason":"SPLIT","variant":"on","metadata":{"source":"rollout","enabled":true}}`, "", ""},
		{"other namespace", "/namespaces/other/ofrep/v1/evaluate/flags/greeting", `{}`, 200,
			`{"key":"greeting","value":"hi","reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}}`, "", ""},
		{"off without off value omits value", "/ofrep/v1/evaluate/flags/banner", `{"context":{}}`, 200,
			`{"key":"banner","reason":"DISABLED","variant":"off","metadata":{"source":"kill-switch","enabled":false}}`, "", ""},
		{"rule with free attribute", "/ofrep/v1/evaluate/flags/theme", `{"context":{"targetingKey":"u1","plan":"pro"}}`, 200,
			`{"key":"theme","value":"neon","reason":"TARGETING_MATCH","variant":"pro","metadata":{"source":"rule:pro","enabled":true}}`, "", ""},
		{"object value", "/ofrep/v1/evaluate/flags/limits", ``, 200,
			`{"key":"limits","value":{"maxItems":50},"reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}}`, "", ""},
		{"role gated", "/ofrep/v1/evaluate/flags/admin-panel", `{"context":{"role":"viewer"}}`, 200,
			`{"key":"admin-panel","value":false,"reason":"TARGETING_MATCH","variant":"off","metadata":{"source":"role-gate","enabled":false}}`, "", ""},
		{"role allowed", "/ofrep/v1/evaluate/flags/admin-panel", `{"context":{"role":"admin"}}`, 200,
			`{"key":"admin-panel","value":true,"reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}}`, "", ""},
		{"not found", "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`, 404,
			`{"key":"nope","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag \"nope\" not found in namespace \"shop\""}`, "", ""},
		{"unknown namespace", "/namespaces/nowhere/ofrep/v1/evaluate/flags/x", `{}`, 404,
			`{"key":"x","errorCode":"FLAG_NOT_FOUND","errorDetails":"namespace \"nowhere\" not found: it has no flags"}`, "", ""},
		{"namespace with only overrides", "/namespaces/ghost/ofrep/v1/evaluate/flags/nothing", `{}`, 404,
			"", "FLAG_NOT_FOUND", `namespace "ghost" not found`},
		{"invalid stored flag", "/ofrep/v1/evaluate/flags/broken", `{}`, 400, "", "PARSE_ERROR", "value"},
		{"malformed JSON", "/ofrep/v1/evaluate/flags/theme", `{"context":`, 400, "", "PARSE_ERROR", "malformed JSON: unexpected EOF"},
		{"syntax error", "/ofrep/v1/evaluate/flags/theme", `{"context":{]}`, 400, "", "PARSE_ERROR", "invalid character"},
		{"trailing data", "/ofrep/v1/evaluate/flags/theme", `{} {}`, 400, "", "PARSE_ERROR", "unexpected data after the JSON object"},
		{"body not an object", "/ofrep/v1/evaluate/flags/theme", `[1]`, 400, "", "PARSE_ERROR", "request body must be a JSON object"},
		{"context not an object", "/ofrep/v1/evaluate/flags/theme", `{"context":"alice"}`, 400, "", "INVALID_CONTEXT", "context: must be a JSON object, got string"},
		{"well-known not a string", "/ofrep/v1/evaluate/flags/theme", `{"context":{"userId":7}}`, 400, "", "INVALID_CONTEXT", "context.userId: must be a string"},
		{"nested attribute", "/ofrep/v1/evaluate/flags/theme", `{"context":{"tags":["a"]}}`, 400, "", "INVALID_CONTEXT", "context.tags: unsupported attribute type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, http.MethodPost, tc.path, tc.body, "Content-Type", "text/plain")
			check(t, rec, tc.status, tc.wantJSON, tc.wantCode, tc.wantDetails)
			if m, _ := decodeJSON(t, rec.Body.String()).(map[string]any); tc.status != 200 && m["key"] == nil {
				t.Errorf("error body has no key: %s", rec.Body)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	h, _ := newTestHandler(t, Options{MaxBodyBytes: 512, MaxAttributes: 3, MaxAttributeBytes: 16})
	big := `{"context":{"a":"` + strings.Repeat("x", 600) + `"}}`
	tests := []struct {
		name, path, body string
		status           int
		code, details    string
	}{
		{"body too large", "/ofrep/v1/evaluate/flags/theme", big, 413, "PAYLOAD_TOO_LARGE", "request body exceeds 512 bytes"},
		{"body too large bulk", "/ofrep/v1/evaluate/flags", big, 413, "PAYLOAD_TOO_LARGE", "512"},
		{"too many attributes", "/ofrep/v1/evaluate/flags/theme", `{"context":{"a":1,"b":2,"c":3,"d":4}}`, 400, "INVALID_CONTEXT", "context has 4 attributes, more than the limit of 3"},
		{"attribute value too large", "/ofrep/v1/evaluate/flags/theme", `{"context":{"plan":"` + strings.Repeat("p", 17) + `"}}`, 400, "INVALID_CONTEXT", "context.plan: value is 17 bytes, more than the limit of 16"},
		{"well-known value too large", "/v1/evaluate", `{"context":{"userId":"` + strings.Repeat("u", 20) + `"}}`, 400, "INVALID_CONTEXT", "context.userId: value is 20 bytes"},
		{"numeric attribute too large", "/v1/evaluate", `{"context":{"n":1` + strings.Repeat("0", 20) + `}}`, 400, "INVALID_CONTEXT", "context.n: value is 21 bytes"},
		{"attribute name too large", "/v1/evaluate", `{"context":{"` + strings.Repeat("k", 17) + `":"v"}}`, 400, "INVALID_CONTEXT", "attribute name"},
		{"explain attribute too large", "/v1/flags/theme/explain?attr.plan=" + strings.Repeat("p", 17), "", 400, "INVALID_CONTEXT", "context.plan: value is 17 bytes"},
		{"user id too large", "/v1/users/" + strings.Repeat("u", 17) + "/flags", "", 400, "INVALID_CONTEXT", "userId: value is 17 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.body == "" {
				method = http.MethodGet
			}
			check(t, do(h, method, tc.path, tc.body), tc.status, "", tc.code, tc.details)
		})
	}

	// A chunked body (unknown length) is cut off by MaxBytesReader.
	req := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/theme", strings.NewReader(big))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	check(t, rec, 413, "", "PAYLOAD_TOO_LARGE", "512")
}

func TestDefaults(t *testing.T) {
	h := New(evaluator.NewStore(), Options{})
	rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags/x", `{}`)
	check(t, rec, 404, `{"key":"x","errorCode":"FLAG_NOT_FOUND","errorDetails":"namespace \"\" not found: it has no flags"}`, "", "")
	many := make([]string, 65)
	for i := range many {
		many[i] = `"a` + strings.Repeat("x", i) + `":1`
	}
	store, _ := newTestStore(t)
	h = New(store, Options{DefaultNamespace: "shop"})
	check(t, do(h, http.MethodPost, "/v1/evaluate", `{"context":{`+strings.Join(many, ",")+`}}`), 400, "", "INVALID_CONTEXT", "limit of 64")
	check(t, do(h, http.MethodPost, "/v1/evaluate", `{"context":{"a":"`+strings.Repeat("x", 1025)+`"}}`), 400, "", "INVALID_CONTEXT", "limit of 1024")
	check(t, do(h, http.MethodPost, "/v1/evaluate", `{"context":{"a":"`+strings.Repeat("x", 70<<10)+`"}}`), 413, "", "PAYLOAD_TOO_LARGE", "65536")
}

func TestRouting(t *testing.T) {
	h, _ := newTestHandler(t, Options{})
	tests := []struct {
		name, method, path string
		status             int
		code, details      string
		allow              string
	}{
		{"healthz", http.MethodGet, "/healthz", 200, "", "", ""},
		{"healthz wrong method", http.MethodPost, "/healthz", 405, "METHOD_NOT_ALLOWED", "use GET", "GET"},
		{"ofrep GET", http.MethodGet, "/ofrep/v1/evaluate/flags/theme", 405, "METHOD_NOT_ALLOWED", "method GET is not allowed; use POST", "POST"},
		{"bulk GET namespaced", http.MethodGet, "/namespaces/shop/ofrep/v1/evaluate/flags", 405, "METHOD_NOT_ALLOWED", "use POST", "POST"},
		{"users POST", http.MethodPost, "/v1/users/alice/flags", 405, "METHOD_NOT_ALLOWED", "use GET", "GET"},
		{"unknown route", http.MethodGet, "/v2/whatever", 404, "NOT_FOUND", "no route for GET /v2/whatever", ""},
		{"unknown namespace native", http.MethodPost, "/namespaces/nowhere/v1/evaluate", 404, "NAMESPACE_NOT_FOUND", `namespace "nowhere" not found`, ""},
		{"unknown namespace bulk", http.MethodPost, "/namespaces/nowhere/ofrep/v1/evaluate/flags", 404, "NAMESPACE_NOT_FOUND", `namespace "nowhere"`, ""},
		{"unknown namespace users", http.MethodGet, "/namespaces/ghost/v1/users/alice/flags", 404, "NAMESPACE_NOT_FOUND", `namespace "ghost"`, ""},
		{"unknown namespace explain", http.MethodGet, "/namespaces/nowhere/v1/flags/theme/explain", 404, "NAMESPACE_NOT_FOUND", `namespace "nowhere"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, tc.method, tc.path, "")
			want := ""
			if tc.status == 200 {
				want = `{"status":"ok"}`
			}
			check(t, rec, tc.status, want, tc.code, tc.details)
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestNamespaceCacheFollowsWrites(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	check(t, do(h, http.MethodPost, "/namespaces/fresh/v1/evaluate", `{}`), 404, "", "NAMESPACE_NOT_FOUND", "fresh")
	if _, _, err := store.Apply(evaluator.UpsertFlag("fresh", "f", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true})); err != nil {
		t.Fatal(err)
	}
	check(t, do(h, http.MethodPost, "/namespaces/fresh/v1/evaluate", `{}`), 200,
		`{"namespace":"fresh","revision":2,"flags":{"f":{"value":true,"enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`, "", "")
	if _, _, err := store.Apply(evaluator.DeleteFlag("fresh", "f")); err != nil {
		t.Fatal(err)
	}
	check(t, do(h, http.MethodPost, "/namespaces/fresh/v1/evaluate", `{}`), 404, "", "NAMESPACE_NOT_FOUND", "fresh")
}

func TestConcurrentRequestsAndWrites(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	done := make(chan struct{})
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{"userId":"alice"}}`)
				if rec.Code != 200 {
					errs <- rec.Body.String()
					return
				}
			}
		}()
	}
	for i := range 50 {
		if _, _, err := store.Apply(evaluator.UpsertFlag("shop", "churn", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: i%2 == 0})); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestRequestErrorsWrap(t *testing.T) {
	lim := limits{maxAttrs: 4, maxAttrBytes: 8}
	_, err := decodeRequest([]byte(`{"context":{]}`), lim, ofrepBody)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("malformed JSON: %v does not wrap *json.SyntaxError", err)
	}
	_, err = decodeRequest([]byte(`{"context":{"userId":1}}`), lim, ofrepBody)
	var fe *evaluator.FieldError
	if !errors.As(err, &fe) || fe.Field != "context.userId" {
		t.Errorf("bad context: %v does not wrap the field error", err)
	}
}

// closeOrFail closes c and fails the test, which goes on, if that fails. For defer and
// t.Cleanup, in place of a bare Close whose error nobody would see.
func closeOrFail(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
