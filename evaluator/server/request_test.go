package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// TestRequestMembers pins the strict member rules of request bodies: names
// match exactly, each kind has its own members, nothing is repeated.
func TestRequestMembers(t *testing.T) {
	h, _ := newTestHandler(t, Options{})
	const (
		single = "/ofrep/v1/evaluate/flags/theme"
		bulk   = "/ofrep/v1/evaluate/flags"
		native = "/v1/evaluate"
	)
	tests := []struct {
		name, path, body string
		status           int
		code, details    string
	}{
		{"exact member", single, `{"context":{"targetingKey":"u1","plan":"pro"}}`, 200, "", ""},
		{"no members", single, `{}`, 200, "", ""},
		{"null context", bulk, `{"context":null}`, 200, "", ""},
		{"escaped member name is the same name", single, `{"\u0063ontext":{"plan":"pro"}}`, 200, "", ""},
		{"attribute names differing in case are different attributes", single, `{"context":{"plan":"pro","Plan":"free"}}`, 200, "", ""},
		{"native context and flags", native, `{"context":{"userId":"alice"},"flags":["theme"]}`, 200, "", ""},
		{"upper-case member", single, `{"CONTEXT":{"targetingKey":"alice"}}`, 400, "PARSE_ERROR", `unknown member "CONTEXT"`},
		{"capitalised member", bulk, `{"Context":{"targetingKey":"alice"}}`, 400, "PARSE_ERROR", `unknown member "Context" (member names are case-sensitive; want "context")`},
		{"unknown member", single, `{"context":{},"extra":1}`, 400, "PARSE_ERROR", `unknown member "extra"`},
		{"flags is not an OFREP member", single, `{"context":{},"flags":["theme"]}`, 400, "PARSE_ERROR", `unknown member "flags"`},
		{"flags is not an OFREP bulk member", bulk, `{"flags":[]}`, 400, "PARSE_ERROR", `unknown member "flags"`},
		{"capitalised native member", native, `{"Flags":["theme"]}`, 400, "PARSE_ERROR", `unknown member "Flags" (member names are case-sensitive; want "context" and "flags")`},
		{"repeated context", single, `{"context":{"plan":"pro"},"context":{"plan":"free"}}`, 400, "PARSE_ERROR", `member "context" is repeated`},
		{"repeated empty context", bulk, `{"context":{},"context":{}}`, 400, "PARSE_ERROR", `member "context" is repeated`},
		{"repeated flags", native, `{"flags":["theme"],"flags":["banner"]}`, 400, "PARSE_ERROR", `member "flags" is repeated`},
		{"repeated well-known attribute", bulk, `{"context":{"targetingKey":"alice","targetingKey":"bob"}}`, 400, "INVALID_CONTEXT", `context: attribute "targetingKey" is repeated`},
		{"repeated well-known attribute, once null", native, `{"context":{"userId":null,"userId":"alice"}}`, 400, "INVALID_CONTEXT", `attribute "userId" is repeated`},
		{"repeated free attribute", single, `{"context":{"plan":"free","plan":"pro"}}`, 400, "INVALID_CONTEXT", `context: attribute "plan" is repeated`},
		{"repeated attribute with an escaped name", single, `{"context":{"plan":"free","\u0070lan":"pro"}}`, 400, "INVALID_CONTEXT", `attribute "plan" is repeated`},
		{"flags of the wrong type", native, `{"flags":"theme"}`, 400, "PARSE_ERROR", "flags: must be an array of strings, got string"},
		{"context is an array", single, `{"context":[{"plan":"pro"}]}`, 400, "INVALID_CONTEXT", "context: must be a JSON object, got array"},
		{"context is a number", bulk, `{"context":7}`, 400, "INVALID_CONTEXT", "context: must be a JSON object, got number"},
		{"body is a boolean", native, `true`, 400, "PARSE_ERROR", "request body must be a JSON object, got boolean"},
		{"truncated after a member", single, `{"context":{}`, 400, "PARSE_ERROR", "malformed JSON: unexpected EOF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, http.MethodPost, tc.path, tc.body), tc.status, "", tc.code, tc.details)
		})
	}
}

// TestMissingTargetingKey pins what a request without a targeting key gets
// (docs/requests.md): it is accepted, and the context simply has no
// principal unless userId is given.
func TestMissingTargetingKey(t *testing.T) {
	store := evaluator.NewStore()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	if _, _, err := store.Apply(
		evaluator.UpsertFlag("shop", "rollout", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true,
			Rollout: &evaluator.Rollout{Percentage: 100}}),
		evaluator.UpsertFlag("shop", "ranker", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true,
			Value: raw(`"v2"`), Rollout: &evaluator.Rollout{Percentage: 100}}),
		evaluator.UpsertFlag("shop", "static", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"s"`)}),
		evaluator.UpsertFlag("shop", "rule", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"plain"`),
			Rules: []evaluator.Rule{{Name: "not-x", Value: raw(`"matched"`),
				Match: []evaluator.Condition{{Attribute: "targetingKey", Operator: evaluator.OpNotIn, Values: []string{"x"}}}}}}),
		evaluator.UpsertFlag("shop", "staff", evaluator.FlagSpec{Type: evaluator.TypeBoolean,
			AllowList: &evaluator.AllowList{Users: []string{"alice"}}}),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "alice", Namespace: "shop",
			Name: "alice", CreatedAt: time.Unix(1, 0), Enabled: true,
			Entries: []evaluator.OverrideEntry{{Key: "static", Value: raw(`"mine"`)}}}),
	); err != nil {
		t.Fatal(err)
	}
	h := New(store, Options{DefaultNamespace: "shop"})
	result := func(key, value, reason, variant, source string, enabled bool) string {
		v := ""
		if value != "" {
			v = `"value":` + value + `,`
		}
		return `{"key":"` + key + `",` + v + `"reason":"` + reason + `","variant":"` + variant +
			`","metadata":{"source":"` + source + `","enabled":` + strconv.FormatBool(enabled) + `}}`
	}
	tests := []struct {
		name, key, body, want string
	}{
		{"rollout without a principal serves the off value", "rollout", `{"context":{"plan":"pro"}}`,
			result("rollout", "false", "SPLIT", "off", "rollout", false)},
		{"the same with an empty body", "rollout", ``, result("rollout", "false", "SPLIT", "off", "rollout", false)},
		{"the same with an empty or null targeting key", "rollout", `{"context":{"targetingKey":"","userId":null}}`,
			result("rollout", "false", "SPLIT", "off", "rollout", false)},
		{"rollout without a principal and no off value: the caller's default", "ranker", `{}`,
			result("ranker", "", "DISABLED", "off", "rollout", false)},
		{"orgId is the principal of a rollout", "rollout", `{"context":{"orgId":"acme"}}`,
			result("rollout", "true", "SPLIT", "on", "rollout", true)},
		{"userId is the principal of a rollout", "rollout", `{"context":{"userId":"bob"}}`,
			result("rollout", "true", "SPLIT", "on", "rollout", true)},
		{"static flags do not need a principal", "static", `{"context":{}}`,
			result("static", `"s"`, "STATIC", "on", "default", true)},
		{"a rule on the absent targeting key does not match, not even NotIn", "rule", `{"context":{"userId":"bob"}}`,
			result("rule", `"plain"`, "STATIC", "on", "default", true)},
		{"user overrides apply through userId", "static", `{"context":{"userId":"alice"}}`,
			result("static", `"mine"`, "TARGETING_MATCH", "override", "user-override:shop/alice", true)},
		{"no user overrides without a user", "static", `{"context":{"orgId":"acme"}}`,
			result("static", `"s"`, "STATIC", "on", "default", true)},
		{"user allow-lists apply through userId", "staff", `{"context":{"userId":"alice"}}`,
			result("staff", "true", "TARGETING_MATCH", "on", "allow-list:user", true)},
		{"no user allow-list without a user", "staff", `{}`,
			result("staff", "false", "STATIC", "off", "kill-switch", false)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, http.MethodPost, "/ofrep/v1/evaluate/flags/"+tc.key, tc.body), 200, tc.want, "", "")
		})
	}
	t.Run("bulk evaluation without a targeting key", func(t *testing.T) {
		rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags", `{"context":{}}`)
		var got struct {
			Flags []map[string]any `json:"flags"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got.Flags) != 5 {
			t.Fatalf("status %d, body %s; want 200 with 5 flags", rec.Code, rec.Body)
		}
		for _, f := range got.Flags {
			if f["errorCode"] != nil {
				t.Errorf("flag %v: error %v", f["key"], f["errorCode"])
			}
		}
	})
}

// TestOFREPReasons pins the reason mapping of docs/ofrep.md: DISABLED
// exactly when there is no value, the kill switch with a value STATIC, the
// role gate with a value TARGETING_MATCH, everything else the evaluator's
// reason.
func TestOFREPReasons(t *testing.T) {
	store := evaluator.NewStore()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	off := false
	if _, _, err := store.Apply(
		evaluator.UpsertFlag("shop", "kill-bool", evaluator.FlagSpec{Type: evaluator.TypeBoolean}),
		evaluator.UpsertFlag("shop", "kill-off", evaluator.FlagSpec{Type: evaluator.TypeString, Value: raw(`"new"`), OffValue: raw(`"classic"`)}),
		evaluator.UpsertFlag("shop", "kill-none", evaluator.FlagSpec{Type: evaluator.TypeString, Value: raw(`"new"`)}),
		evaluator.UpsertFlag("shop", "gate-bool", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true, AllowedRoles: []string{"admin"}}),
		evaluator.UpsertFlag("shop", "gate-off", evaluator.FlagSpec{Type: evaluator.TypeNumber, Enabled: true, Value: raw(`5`), OffValue: raw(`1`), AllowedRoles: []string{"admin"}}),
		evaluator.UpsertFlag("shop", "gate-none", evaluator.FlagSpec{Type: evaluator.TypeObject, Enabled: true, Value: raw(`{"a":1}`), AllowedRoles: []string{"admin"}}),
		evaluator.UpsertFlag("shop", "split-none", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"v"`), Rollout: &evaluator.Rollout{Percentage: 0}}),
		evaluator.UpsertFlag("shop", "split-off", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"v"`), OffValue: raw(`"w"`), Rollout: &evaluator.Rollout{Percentage: 0}}),
		evaluator.UpsertFlag("shop", "static", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true, Value: raw(`"v"`)}),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "u", Namespace: "shop",
			Name: "u", CreatedAt: time.Unix(1, 0), Enabled: true,
			Entries: []evaluator.OverrideEntry{{Key: "static", Enabled: &off}, {Key: "split-off", Enabled: &off}}}),
	); err != nil {
		t.Fatal(err)
	}
	h := New(store, Options{DefaultNamespace: "shop"})
	tests := []struct {
		key, context, value, reason, variant, source string
	}{
		{"kill-bool", `{}`, `false`, "STATIC", "off", "kill-switch"},
		{"kill-off", `{}`, `"classic"`, "STATIC", "off", "kill-switch"},
		{"kill-none", `{}`, ``, "DISABLED", "off", "kill-switch"},
		{"gate-bool", `{"role":"viewer"}`, `false`, "TARGETING_MATCH", "off", "role-gate"},
		{"gate-off", `{"role":"viewer"}`, `1`, "TARGETING_MATCH", "off", "role-gate"},
		{"gate-none", `{"role":"viewer"}`, ``, "DISABLED", "off", "role-gate"},
		{"gate-off", `{"role":"admin"}`, `5`, "STATIC", "on", "default"},
		{"split-none", `{"userId":"x"}`, ``, "DISABLED", "off", "rollout"},
		{"split-off", `{"userId":"x"}`, `"w"`, "SPLIT", "off", "rollout"},
		{"static", `{"userId":"x"}`, `"v"`, "STATIC", "on", "default"},
		{"static", `{"userId":"u"}`, ``, "DISABLED", "off", "user-override:shop/u"},
		{"split-off", `{"userId":"u"}`, `"w"`, "TARGETING_MATCH", "off", "user-override:shop/u"},
	}
	for _, tc := range tests {
		t.Run(tc.key+" "+tc.context, func(t *testing.T) {
			rec := do(h, http.MethodPost, "/ofrep/v1/evaluate/flags/"+tc.key, `{"context":`+tc.context+`}`)
			var got map[string]json.RawMessage
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
				t.Fatalf("status %d, body %s", rec.Code, rec.Body)
			}
			if string(got["value"]) != tc.value || string(got["reason"]) != strconv.Quote(tc.reason) ||
				string(got["variant"]) != strconv.Quote(tc.variant) {
				t.Errorf("value %s, reason %s, variant %s; want %q, %s, %s", got["value"], got["reason"], got["variant"], tc.value, tc.reason, tc.variant)
			}
			if want := `{"source":` + strconv.Quote(tc.source); len(got["metadata"]) < len(want) || string(got["metadata"][:len(want)]) != want {
				t.Errorf("metadata %s, want source %s", got["metadata"], tc.source)
			}
		})
	}
}
