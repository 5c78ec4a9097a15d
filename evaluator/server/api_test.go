package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/flagops/flagops/evaluator"
)

func TestOFREPBulk(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	shopAlice := `{"flags":[
		{"key":"banner","reason":"DISABLED","variant":"off","metadata":{"source":"kill-switch","enabled":false}},
		{"key":"broken","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
		{"key":"limits","value":{"maxItems":50},"reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}},
		{"key":"new-checkout","value":true,"reason":"TARGETING_MATCH","variant":"override","metadata":{"source":"user-override:shop/alice-beta","enabled":true,"overrideExpiresAt":"2030-01-01T13:00:00Z","overrideReason":"beta tester"}},
		{"key":"theme","value":"dark","reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}}],
		"metadata":{"namespace":"shop"},
		"eventStreams":[{"type":"sse","endpoint":{"requestUri":` + strconv.Quote(advertisedURI("",
		`{"targetingKey":"alice"}`, "", idOf(store, "shop", evaluator.Context{TargetingKey: "alice"}))) + `}}]}`
	tests := []struct {
		name, path, body string
		want             string
	}{
		{"unprefixed, role-gated flag left out", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"alice"}}`, shopAlice},
		{"namespaced", "/namespaces/other/ofrep/v1/evaluate/flags", ``, `{"flags":[
			{"key":"greeting","value":"hi","reason":"STATIC","variant":"on","metadata":{"source":"default","enabled":true}}],
			"metadata":{"namespace":"other"},
			"eventStreams":[{"type":"sse","endpoint":{"requestUri":` + strconv.Quote(advertisedURI("/namespaces/other",
			"", "", idOf(store, "other", evaluator.Context{}))) + `}}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, http.MethodPost, tc.path, tc.body), 200, tc.want, "", "")
		})
	}

	t.Run("role admin sees gated flag", func(t *testing.T) {
		rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{"role":"admin"}}`)
		if !strings.Contains(rec.Body.String(), `"key":"admin-panel"`) {
			t.Errorf("admin-panel missing: %s", rec.Body)
		}
	})

	t.Run("etag and 304", func(t *testing.T) {
		body := `{"context":{"targetingKey":"alice","plan":"pro","n":1.5,"beta":true,"z":null}}`
		rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", body)
		etag := rec.Header().Get("ETag")
		if len(etag) != 18 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
			t.Fatalf("ETag = %q", etag)
		}
		// Same context in another key order: same tag.
		same := `{"context":{"z":null,"beta":true,"n":1.5,"plan":"pro","targetingKey":"alice"}}`
		if got := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", same).Header().Get("ETag"); got != etag {
			t.Errorf("reordered context: ETag %q, want %q", got, etag)
		}
		for _, inm := range []string{etag, `"x", ` + etag, "W/" + etag, "*"} {
			rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", body, "If-None-Match", inm)
			if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
				t.Errorf("If-None-Match %s: status %d, body %q", inm, rec.Code, rec.Body)
			}
			if rec.Header().Get("ETag") != etag {
				t.Errorf("304 without ETag")
			}
		}
		if rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", body, "If-None-Match", `"r0-0"`); rec.Code != 200 {
			t.Errorf("stale tag: status %d", rec.Code)
		}
		// Another context: another tag.
		if got := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"bob"}}`).Header().Get("ETag"); got == etag {
			t.Errorf("different context, same ETag %q", got)
		}
		// A write that changes the context's values (a new flag) changes
		// the tag.
		if _, _, err := store.Apply(evaluator.UpsertFlag("shop", "x", evaluator.FlagSpec{Type: evaluator.TypeBoolean})); err != nil {
			t.Fatal(err)
		}
		rec = do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", body, "If-None-Match", etag)
		if rec.Code != 200 || rec.Header().Get("ETag") == etag {
			t.Errorf("after write: status %d ETag %q", rec.Code, rec.Header().Get("ETag"))
		}
	})

	t.Run("errors", func(t *testing.T) {
		check(t, do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{`), 400, "", "PARSE_ERROR", "malformed JSON")
		check(t, do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{"role":false}}`), 400, "", "INVALID_CONTEXT", "context.role")
	})
}

func TestETagChangesWhenOverrideExpires(t *testing.T) {
	store, now := newTestStore(t)
	h := New(store, Options{DefaultNamespace: "shop"})
	body := `{"context":{"userId":"alice"}}`
	before := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", body).Header().Get("ETag")
	*now = now.Add(2 * 3600e9) // past the override's expiry, no write
	rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", body, "If-None-Match", before)
	if rec.Code != 200 {
		t.Fatalf("status %d after expiry, want 200 (revision unchanged, result changed)", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "alice-beta") {
		t.Errorf("expired override served: %s", rec.Body)
	}
}

func TestNative(t *testing.T) {
	h, _ := newTestHandler(t, Options{})
	tests := []struct {
		name, path, body string
		status           int
		want             string
		code, details    string
	}{
		{"all flags", "/v1/evaluate", `{"context":{"userId":"bob"}}`, 200, `{"namespace":"shop","revision":1,"flags":{
			"banner":{"enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch"},
			"broken":{"enabled":false,"reason":"ERROR","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
			"limits":{"value":{"maxItems":50},"enabled":true,"variant":"on","reason":"STATIC","source":"default"},
			"new-checkout":{"value":false,"enabled":false,"variant":"off","reason":"SPLIT","source":"rollout"},
			"theme":{"value":"dark","enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`, "", ""},
		{"selected flags", "/namespaces/shop/v1/evaluate", `{"context":{"userId":"alice"},"flags":["theme","nope","admin-panel","theme"]}`, 200,
			`{"namespace":"shop","revision":1,"flags":{
			"nope":{"enabled":false,"reason":"ERROR","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag \"nope\" not found in namespace \"shop\""},
			"theme":{"value":"dark","enabled":true,"variant":"on","reason":"STATIC","source":"default"}}}`, "", ""},
		{"selected flags with role", "/v1/evaluate", `{"context":{"userId":"alice","role":"admin"},"flags":["admin-panel"]}`, 200,
			`{"namespace":"shop","revision":1,"flags":{
			"admin-panel":{"value":true,"enabled":true,"variant":"on","reason":"TARGETING_MATCH","source":"user-override:shop/alice-beta","overrideExpiresAt":"2030-01-01T13:00:00Z","overrideReason":"beta tester"}}}`, "", ""},
		{"other namespace", "/namespaces/other/v1/evaluate", `{"flags":[]}`, 200, `{"namespace":"other","revision":1,"flags":{}}`, "", ""},
		{"flags not an array", "/v1/evaluate", `{"flags":"theme"}`, 400, "", "PARSE_ERROR", "flags:"},
		{"empty flag key", "/v1/evaluate", `{"flags":["a",""]}`, 400, "", "PARSE_ERROR", "flags[1]: must not be empty"},
		{"malformed", "/v1/evaluate", `{"context":{"a":}`, 400, "", "PARSE_ERROR", "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, http.MethodPost, tc.path, tc.body), tc.status, tc.want, tc.code, tc.details)
		})
	}
}

func TestUserFlags(t *testing.T) {
	h, _ := newTestHandler(t, Options{})
	const override = `"object":{"kind":"user","namespace":"shop","name":"alice-beta"},"source":"user-override:shop/alice-beta",
		"createdAt":"2030-01-01T11:00:00Z","expiresAt":"2030-01-01T13:00:00Z","reason":"beta tester"`
	tests := []struct {
		name, path string
		want       string
	}{
		{"user with override", "/v1/users/alice/flags", `{"namespace":"shop","revision":1,"userId":"alice","context":{"userId":"alice"},"flags":{
			"admin-panel":{"value":false,"enabled":false,"variant":"off","reason":"DISABLED","source":"role-gate","sourceKind":"role-gate","hidden":true},
			"banner":{"enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch","sourceKind":"kill-switch"},
			"broken":{"enabled":false,"reason":"ERROR","sourceKind":"error","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
			"limits":{"value":{"maxItems":50},"enabled":true,"variant":"on","reason":"STATIC","source":"default","sourceKind":"default"},
			"new-checkout":{"value":true,"enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/alice-beta","sourceKind":"user-override",
				"override":{"key":"new-checkout",` + override + `,"mode":"value","value":true,"applied":true}},
			"theme":{"value":"dark","enabled":true,"variant":"on","reason":"STATIC","source":"default","sourceKind":"default"}},
			"overrides":[
				{"key":"admin-panel",` + override + `,"mode":"on","applied":false},
				{"key":"new-checkout",` + override + `,"mode":"value","value":true,"applied":true}]}`},
		{"user without override, namespaced", "/namespaces/other/v1/users/bob/flags?role=admin&orgId=acme", `{"namespace":"other","revision":1,"userId":"bob",
			"context":{"userId":"bob","orgId":"acme","role":"admin"},"flags":{
			"greeting":{"value":"hi","enabled":true,"variant":"on","reason":"STATIC","source":"default","sourceKind":"default"}},"overrides":[]}`},
		{"device", "/v1/devices/d1/flags?deviceClass=phone&userId=alice&role=admin", `{"namespace":"shop","revision":1,"userId":"alice","deviceId":"d1",
			"context":{"userId":"alice","role":"admin","deviceId":"d1","deviceClass":"phone"},"flags":{
			"admin-panel":{"value":true,"enabled":true,"variant":"on","reason":"TARGETING_MATCH","source":"user-override:shop/alice-beta","sourceKind":"user-override",
				"override":{"key":"admin-panel",` + override + `,"mode":"on","applied":true}},
			"banner":{"enabled":false,"variant":"off","reason":"DISABLED","source":"kill-switch","sourceKind":"kill-switch"},
			"broken":{"enabled":false,"reason":"ERROR","sourceKind":"error","errorCode":"PARSE_ERROR","errorDetails":"spec.value: required for String flags"},
			"limits":{"value":{"maxItems":50},"enabled":true,"variant":"on","reason":"STATIC","source":"default","sourceKind":"default"},
			"new-checkout":{"value":true,"enabled":true,"variant":"override","reason":"TARGETING_MATCH","source":"user-override:shop/alice-beta","sourceKind":"user-override",
				"override":{"key":"new-checkout",` + override + `,"mode":"value","value":true,"applied":true}},
			"theme":{"value":"dark","enabled":true,"variant":"on","reason":"STATIC","source":"default","sourceKind":"default"}},
			"overrides":[
				{"key":"admin-panel",` + override + `,"mode":"on","applied":true},
				{"key":"new-checkout",` + override + `,"mode":"value","value":true,"applied":true}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, http.MethodGet, tc.path, ""), 200, tc.want, "", "")
		})
	}
}

func TestExplain(t *testing.T) {
	h, _ := newTestHandler(t, Options{})
	t.Run("trace", func(t *testing.T) {
		rec := do(h, http.MethodGet, "/v1/flags/theme/explain?userId=bob&orgId=acme&role=dev&deviceId=d1&deviceClass=phone&targetingKey=tk&attr.plan=pro", "")
		check(t, rec, 200, "", "", "")
		var got struct {
			Namespace string                `json:"namespace"`
			Key       string                `json:"key"`
			Context   evaluator.Context     `json:"context"`
			Steps     []evaluator.TraceStep `json:"steps"`
			Result    struct {
				Value  any    `json:"value"`
				Reason string `json:"reason"`
				Source string `json:"source"`
			} `json:"result"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		wantCtx := evaluator.Context{TargetingKey: "tk", UserID: "bob", OrgID: "acme", Role: "dev", DeviceID: "d1",
			DeviceClass: "phone", Attributes: map[string]any{"plan": "pro"}}
		if got.Namespace != "shop" || got.Key != "theme" || got.Result.Value != "neon" || got.Result.Reason != "TARGETING_MATCH" ||
			got.Result.Source != "rule:pro" || got.Context.String() != wantCtx.String() {
			t.Errorf("trace = %+v", got)
		}
		var applied []string
		for _, s := range got.Steps {
			if s.Applied {
				applied = append(applied, s.Step)
			}
		}
		if len(got.Steps) != 11 || len(applied) != 1 || applied[0] != "rule:pro" {
			t.Errorf("steps = %+v", got.Steps)
		}
		if !strings.Contains(got.Text, "APPLIED") {
			t.Errorf("text = %q", got.Text)
		}
	})
	t.Run("namespaced invalid flag", func(t *testing.T) {
		rec := do(h, http.MethodGet, "/namespaces/shop/v1/flags/broken/explain", "")
		check(t, rec, 200, "", "", "")
		if !strings.Contains(rec.Body.String(), "flag failed to compile") {
			t.Errorf("body %s", rec.Body)
		}
	})
	tests := []struct {
		name, path    string
		status        int
		code, details string
	}{
		{"unknown parameter", "/v1/flags/theme/explain?userId=bob&user=x", 400, "INVALID_QUERY", `unknown query parameter "user"`},
		{"empty attr name", "/v1/flags/theme/explain?attr.=x", 400, "INVALID_QUERY", `unknown query parameter "attr."`},
		{"well-known as attr", "/v1/flags/theme/explain?attr.userId=x", 400, "INVALID_QUERY", `query parameter "attr.userId": userId is a well-known attribute`},
		{"repeated parameter", "/v1/flags/theme/explain?userId=a&userId=b", 400, "INVALID_QUERY", `query parameter "userId" is given 2 times`},
		{"malformed query", "/v1/flags/theme/explain?userId=%zz", 400, "INVALID_QUERY", "malformed query"},
		{"not found", "/v1/flags/nope/explain?userId=bob", 404, "FLAG_NOT_FOUND", `flag "nope" not found in namespace "shop"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, http.MethodGet, tc.path, "")
			check(t, rec, tc.status, "", tc.code, tc.details)
			if m, _ := decodeJSON(t, rec.Body.String()).(map[string]any); m["key"] == nil {
				t.Errorf("error body has no key: %s", rec.Body)
			}
		})
	}
}
