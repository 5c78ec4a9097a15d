package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// addFlagOverridesFixture adds, besides alice-beta (which applies), one
// override of new-checkout in each state, a device override, an override
// naming a key no flag has, and one of new-checkout in namespace other
// (which has no such flag).
func addFlagOverridesFixture(t testing.TB, store *evaluator.Store) {
	t.Helper()
	past := testNow.Add(-time.Minute)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	user := func(ns, name, id string, created time.Time, entries ...evaluator.OverrideEntry) evaluator.Override {
		return evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: id, Namespace: ns, Name: name, UID: "uid-" + name,
			CreatedAt: created, Enabled: true, Entries: entries}
	}
	lost := user("shop", "alice-dup", "alice", testNow, evaluator.OverrideEntry{Key: "new-checkout", Value: raw(`false`)})
	disabled := user("shop", "bob-off", "bob", testNow, evaluator.OverrideEntry{Key: "new-checkout"})
	disabled.Enabled = false
	expired := user("shop", "carol-old", "carol", testNow.Add(-time.Hour), evaluator.OverrideEntry{Key: "new-checkout"})
	expired.ExpiresAt = &past
	invalid := user("shop", "dave-bad", "dave", testNow, evaluator.OverrideEntry{Key: "new-checkout", Value: raw(`"yes"`)})
	device := user("shop", "tab-1-qa", "tab-1", testNow, evaluator.OverrideEntry{Key: "new-checkout", Enabled: new(bool)})
	device.Kind, device.Reason = evaluator.SubjectDevice, "QA tablet"
	future := user("shop", "erin-early", "erin", testNow, evaluator.OverrideEntry{Key: "future_flag"})
	other := user("other", "alice-other", "alice", testNow, evaluator.OverrideEntry{Key: "new-checkout"})
	ops := []evaluator.Op{}
	for _, o := range []evaluator.Override{lost, disabled, expired, invalid, device, future, other} {
		ops = append(ops, evaluator.UpsertOverride(o))
	}
	if _, _, err := store.Apply(ops...); err != nil {
		t.Fatal(err)
	}
}

// overridesBody is the body of GET /v1/flags/{key}/overrides.
type overridesBody struct {
	Namespace  string             `json:"namespace"`
	Key        string             `json:"key"`
	FlagExists bool               `json:"flagExists"`
	Total      int                `json:"total"`
	Overrides  []flagOverrideView `json:"overrides"`
	Continue   string             `json:"continue"`
}

// lines renders the items as kind/subject/name:state.
func (b *overridesBody) lines() []string {
	out := []string{}
	for _, o := range b.Overrides {
		out = append(out, string(o.Kind)+"/"+o.SubjectID+"/"+o.Object.Name+":"+string(o.State))
	}
	return out
}

func getOverrides(t *testing.T, h http.Handler, path string, header ...string) overridesBody {
	t.Helper()
	rec := do(h, http.MethodGet, path, "", header...)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body)
	}
	var b overridesBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFlagOverridesRoute(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	addFlagOverridesFixture(t, store)
	all := []string{
		"device/tab-1/tab-1-qa:applies",
		"user/alice/alice-beta:applies",
		"user/alice/alice-dup:lost",
		"user/bob/bob-off:disabled",
		"user/carol/carol-old:expired",
		"user/dave/dave-bad:invalid",
	}
	tests := []struct {
		name    string
		path    string
		ns, key string
		want    []string
		exists  bool
		total   int
		more    bool
	}{
		{name: "every state, sorted", path: "/v1/flags/new-checkout/overrides", ns: "shop", key: "new-checkout", want: all, exists: true, total: 6},
		{name: "prefixed", path: "/namespaces/shop/v1/flags/new-checkout/overrides", ns: "shop", key: "new-checkout", want: all, exists: true, total: 6},
		{name: "first page", path: "/v1/flags/new-checkout/overrides?limit=2", ns: "shop", key: "new-checkout", want: all[:2], exists: true, total: 6, more: true},
		{name: "a page as large as the list", path: "/v1/flags/new-checkout/overrides?limit=6", ns: "shop", key: "new-checkout", want: all, exists: true, total: 6},
		{name: "the largest limit", path: "/v1/flags/new-checkout/overrides?limit=1000", ns: "shop", key: "new-checkout", want: all, exists: true, total: 6},
		{name: "other namespace: its own override only", path: "/namespaces/other/v1/flags/new-checkout/overrides", ns: "other", key: "new-checkout",
			want: []string{"user/alice/alice-other:invalid"}, total: 1},
		{name: "a key only overrides name", path: "/v1/flags/future_flag/overrides", ns: "shop", key: "future_flag",
			want: []string{"user/erin/erin-early:invalid"}, total: 1},
		{name: "a flag without overrides", path: "/v1/flags/banner/overrides", ns: "shop", key: "banner", want: []string{}, exists: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := getOverrides(t, h, tc.path)
			if got := b.lines(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("overrides\n got %q\nwant %q", got, tc.want)
			}
			if b.Namespace != tc.ns || b.Key != tc.key || b.FlagExists != tc.exists || b.Total != tc.total || (b.Continue != "") != tc.more {
				t.Errorf("namespace %q key %q flagExists %v total %d continue %q; want %q %q %v %d %v",
					b.Namespace, b.Key, b.FlagExists, b.Total, b.Continue, tc.ns, tc.key, tc.exists, tc.total, tc.more)
			}
		})
	}

	t.Run("every field of an item", func(t *testing.T) {
		b := getOverrides(t, h, "/v1/flags/new-checkout/overrides")
		byName := map[string]flagOverrideView{}
		for _, o := range b.Overrides {
			byName[o.Object.Name] = o
		}
		want := map[string]flagOverrideView{
			"alice-beta": {Kind: "user", SubjectID: "alice", Source: "user-override:shop/alice-beta", Mode: "value", Value: json.RawMessage(`true`),
				Enabled: true, CreatedAt: "2030-01-01T11:00:00Z", ExpiresAt: "2030-01-01T13:00:00Z", Reason: "beta tester", State: "applies", Applies: true},
			"alice-dup": {Kind: "user", SubjectID: "alice", Source: "user-override:shop/alice-dup", Mode: "value", Value: json.RawMessage(`false`),
				Enabled: true, CreatedAt: "2030-01-01T12:00:00Z", State: "lost",
				Winner: &evaluator.ObjectRef{Kind: "user", Namespace: "shop", Name: "alice-beta"}},
			"bob-off":   {Kind: "user", SubjectID: "bob", Source: "user-override:shop/bob-off", Mode: "on", CreatedAt: "2030-01-01T12:00:00Z", State: "disabled"},
			"carol-old": {Kind: "user", SubjectID: "carol", Source: "user-override:shop/carol-old", Mode: "on", Enabled: true, CreatedAt: "2030-01-01T11:00:00Z", ExpiresAt: "2030-01-01T11:59:00Z", State: "expired"},
			"dave-bad": {Kind: "user", SubjectID: "dave", Source: "user-override:shop/dave-bad", Mode: "value", Value: json.RawMessage(`"yes"`),
				Enabled: true, CreatedAt: "2030-01-01T12:00:00Z", State: "invalid", Error: "boolean flag needs a json boolean, got string"},
			"tab-1-qa": {Kind: "device", SubjectID: "tab-1", Source: "device-override:shop/tab-1-qa", Mode: "off", Enabled: true,
				CreatedAt: "2030-01-01T12:00:00Z", Reason: "QA tablet", State: "applies", Applies: true},
		}
		for name, w := range want {
			got, ok := byName[name]
			if !ok {
				t.Errorf("%s: missing", name)
				continue
			}
			uid := "uid-" + name
			if name == "alice-beta" {
				uid = ""
			}
			w.Object = evaluator.ObjectRef{Kind: w.Kind, Namespace: "shop", Name: name, UID: uid}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("%s:\n got %+v\nwant %+v", name, got, w)
			}
		}
	})

	t.Run("pages add up to the list", func(t *testing.T) {
		for _, prefix := range []string{"", "/namespaces/shop"} {
			var got []string
			path := prefix + "/v1/flags/new-checkout/overrides?limit=4"
			for pages := 0; ; pages++ {
				if pages == len(all) {
					t.Fatal("pages do not end")
				}
				b := getOverrides(t, h, path)
				got = append(got, b.lines()...)
				if b.Continue == "" {
					break
				}
				path = prefix + "/v1/flags/new-checkout/overrides?limit=4&continue=" + url.QueryEscape(b.Continue)
			}
			if !reflect.DeepEqual(got, all) {
				t.Errorf("%q: pages give\n%q\nwant %q", prefix, got, all)
			}
		}
	})

	t.Run("a write between pages", func(t *testing.T) {
		b := getOverrides(t, h, "/v1/flags/new-checkout/overrides?limit=2")
		// The entry the token points after goes away, one before and one
		// after it come: the next page starts after its position.
		if _, _, err := store.Apply(
			evaluator.DeleteOverride(evaluator.SubjectUser, "shop", "alice-beta"),
			evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "aaron", Namespace: "shop", Name: "aaron",
				CreatedAt: testNow, Enabled: true, Entries: []evaluator.OverrideEntry{{Key: "new-checkout"}}}),
			evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "bea", Namespace: "shop", Name: "bea",
				CreatedAt: testNow, Enabled: true, Entries: []evaluator.OverrideEntry{{Key: "new-checkout"}}}),
		); err != nil {
			t.Fatal(err)
		}
		next := getOverrides(t, h, "/v1/flags/new-checkout/overrides?limit=2&continue="+url.QueryEscape(b.Continue))
		want := []string{"user/alice/alice-dup:applies", "user/bea/bea:applies"}
		if got := next.lines(); !reflect.DeepEqual(got, want) || next.Total != 7 {
			t.Errorf("next page %q (total %d), want %q (total 7)", got, next.Total, want)
		}
	})
}

func TestFlagOverridesRouteErrors(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	addFlagOverridesFixture(t, store)
	first := getOverrides(t, h, "/v1/flags/new-checkout/overrides?limit=1")
	if first.Continue == "" {
		t.Fatal("no continue token")
	}
	tok := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	after := map[string]string{"kind": "user", "subjectId": "alice", "name": "alice-beta"}
	tests := []struct {
		name, path           string
		status               int
		code, key, details   string
		forbiddenInErrorBody string
	}{
		{name: "limit zero", path: "/v1/flags/new-checkout/overrides?limit=0", status: 400, code: "INVALID_QUERY", key: "new-checkout",
			details: `query parameter "limit": "0" is not an integer from 1 to 1000`},
		{name: "limit above the cap", path: "/v1/flags/new-checkout/overrides?limit=1001", status: 400, code: "INVALID_QUERY",
			details: `query parameter "limit": "1001" is not an integer from 1 to 1000`},
		{name: "limit not a number", path: "/v1/flags/new-checkout/overrides?limit=ten", status: 400, code: "INVALID_QUERY", details: `"limit": "ten"`},
		{name: "empty limit", path: "/v1/flags/new-checkout/overrides?limit=", status: 400, code: "INVALID_QUERY", details: `"limit": ""`},
		{name: "limit twice", path: "/v1/flags/new-checkout/overrides?limit=1&limit=2", status: 400, code: "INVALID_QUERY",
			details: `query parameter "limit" is given 2 times`},
		{name: "unknown parameter", path: "/v1/flags/new-checkout/overrides?userId=alice", status: 400, code: "INVALID_QUERY",
			details: `unknown query parameter "userId" (want limit or continue)`},
		{name: "malformed query", path: "/v1/flags/new-checkout/overrides?limit=%zz", status: 400, code: "INVALID_QUERY", details: "malformed query"},
		{name: "continue not base64", path: "/v1/flags/new-checkout/overrides?continue=!!", status: 400, code: "INVALID_QUERY",
			details: `query parameter "continue": not a token this route returned`},
		{name: "continue not a token", path: "/v1/flags/new-checkout/overrides?continue=" + tok([]int{1}), status: 400, code: "INVALID_QUERY",
			details: `query parameter "continue": not a token this route returned`},
		{name: "continue without a position", path: "/v1/flags/new-checkout/overrides?continue=" + tok(map[string]any{"ns": "shop", "key": "new-checkout"}),
			status: 400, code: "INVALID_QUERY", details: `query parameter "continue": not a token`},
		{name: "continue of another flag", path: "/v1/flags/theme/overrides?continue=" + first.Continue, status: 400, code: "INVALID_QUERY",
			details: `query parameter "continue": the token continues flag "new-checkout" of namespace "shop", not "theme" of "shop"`},
		{name: "continue of another namespace", path: "/namespaces/other/v1/flags/new-checkout/overrides?continue=" + first.Continue,
			status: 400, code: "INVALID_QUERY", details: `the token continues flag "new-checkout" of namespace "shop", not "new-checkout" of "other"`},
		{name: "forged token for another namespace", path: "/v1/flags/new-checkout/overrides?continue=" + tok(map[string]any{"ns": "other", "key": "new-checkout", "after": after}),
			status: 400, code: "INVALID_QUERY", details: `namespace "other"`},
		{name: "access_token", path: "/v1/flags/new-checkout/overrides?access_token=x", status: 400, code: "INVALID_QUERY", details: "access_token is accepted only"},
		{name: "unknown flag", path: "/v1/flags/nope/overrides", status: 404, code: "FLAG_NOT_FOUND", key: "nope",
			details: `flag "nope" not found in namespace "shop"`},
		{name: "flag of another namespace", path: "/namespaces/other/v1/flags/theme/overrides", status: 404, code: "FLAG_NOT_FOUND",
			details: `flag "theme" not found in namespace "other"`},
		{name: "namespace without flags", path: "/namespaces/ghost/v1/flags/nothing/overrides", status: 404, code: "NAMESPACE_NOT_FOUND",
			details: `namespace "ghost" not found`},
		{name: "POST", path: "/v1/flags/new-checkout/overrides", status: 405, code: "METHOD_NOT_ALLOWED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if tc.name == "POST" {
				method = http.MethodPost
			}
			rec := do(h, method, tc.path, "")
			check(t, rec, tc.status, "", tc.code, tc.details)
			if tc.key != "" && !strings.Contains(rec.Body.String(), `"key":"`+tc.key+`"`) {
				t.Errorf("body %s does not name key %q", rec.Body, tc.key)
			}
		})
	}
}

func TestFlagOverridesNeedAdminTokens(t *testing.T) {
	store, _ := newTestStore(t)
	addFlagOverridesFixture(t, store)
	h := New(store, Options{DefaultNamespace: "shop", Auth: newAuth(t, AuthOptions{})})
	tests := []struct {
		name, path string
		token      string
		status     int
		code       string
		total      int
	}{
		{name: "no token", path: "/v1/flags/new-checkout/overrides", status: 401, code: "UNAUTHORIZED"},
		{name: "device token", path: "/v1/flags/new-checkout/overrides", token: edToken(t, claims("shop", aliceCtx)), status: 403, code: "FORBIDDEN"},
		{name: "device token, prefixed", path: "/namespaces/shop/v1/flags/new-checkout/overrides", token: edToken(t, claims("shop", aliceCtx)), status: 403, code: "FORBIDDEN"},
		{name: "admin of another namespace", path: "/v1/flags/new-checkout/overrides", token: edToken(t, adminClaims("other")), status: 401, code: "UNAUTHORIZED"},
		{name: "admin", path: "/v1/flags/new-checkout/overrides", token: edToken(t, adminClaims("shop")), status: 200, total: 6},
		{name: "admin, prefixed", path: "/namespaces/other/v1/flags/new-checkout/overrides", token: edToken(t, adminClaims("other")), status: 200, total: 1},
		// Authentication comes first: no token learns nothing, not even
		// that a flag is unknown.
		{name: "unknown flag without a token", path: "/v1/flags/nope/overrides", status: 401, code: "UNAUTHORIZED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var header []string
			if tc.token != "" {
				header = bearer(tc.token)
			}
			if tc.status == 200 {
				if b := getOverrides(t, h, tc.path, header...); b.Total != tc.total {
					t.Errorf("total %d, want %d", b.Total, tc.total)
				}
				return
			}
			check(t, do(h, http.MethodGet, tc.path, "", header...), tc.status, "", tc.code, "")
		})
	}
}
