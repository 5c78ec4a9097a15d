package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
)

// addAdminFixture adds to the test store a flag allow-listing org acme and
// a device override of tablet tab-1.
func addAdminFixture(t *testing.T, store *evaluator.Store) {
	t.Helper()
	expires := testNow.Add(2 * time.Hour)
	if _, _, err := store.Apply(
		evaluator.UpsertFlag("shop", "org-beta", evaluator.FlagSpec{
			Type: evaluator.TypeBoolean, Enabled: false, AllowList: &evaluator.AllowList{Orgs: []string{"acme"}},
		}),
		evaluator.UpsertOverride(evaluator.Override{
			Kind: evaluator.SubjectDevice, SubjectID: "tab-1", Namespace: "shop", Name: "tab-1-qa",
			CreatedAt: testNow.Add(-time.Hour), Enabled: true, ExpiresAt: &expires, Reason: "QA tablet",
			Entries: []evaluator.OverrideEntry{{Key: "theme", Value: json.RawMessage(`"sepia"`)}},
		}),
	); err != nil {
		t.Fatal(err)
	}
}

// viewFlag is what the admin views say about one flag.
type viewFlag struct {
	Value      any    `json:"value"`
	Reason     string `json:"reason"`
	Source     string `json:"source"`
	SourceKind string `json:"sourceKind"`
	Hidden     bool   `json:"hidden"`
	Override   *struct {
		Object    evaluator.ObjectRef `json:"object"`
		ExpiresAt string              `json:"expiresAt"`
		Reason    string              `json:"reason"`
		Applied   bool                `json:"applied"`
	} `json:"override"`
}

type viewBody struct {
	Namespace string              `json:"namespace"`
	UserID    string              `json:"userId"`
	DeviceID  string              `json:"deviceId"`
	Context   evaluator.Context   `json:"context"`
	Flags     map[string]viewFlag `json:"flags"`
	Overrides []struct {
		Key     string              `json:"key"`
		Object  evaluator.ObjectRef `json:"object"`
		Applied bool                `json:"applied"`
	} `json:"overrides"`
}

// flagWant is the expected value, source kind and source of a flag, and
// for an override its object name, expiry and reason.
type flagWant struct {
	value            string // JSON; "" for no value
	kind, source     string
	hidden           bool
	object, exp, why string
}

func TestAdminViews(t *testing.T) {
	h, store := newTestHandler(t, Options{})
	addAdminFixture(t, store)
	const (
		aliceExp = "2030-01-01T13:00:00Z"
		tabExp   = "2030-01-01T14:00:00Z"
	)
	tests := []struct {
		name      string
		path      string
		flags     map[string]flagWant
		overrides []string // key/object/applied
	}{
		{
			name: "user with org and role",
			path: "/v1/users/alice/flags?orgId=acme&role=admin",
			flags: map[string]flagWant{
				"admin-panel":  {value: `true`, kind: "user-override", source: "user-override:shop/alice-beta", object: "alice-beta", exp: aliceExp, why: "beta tester"},
				"new-checkout": {value: `true`, kind: "user-override", source: "user-override:shop/alice-beta", object: "alice-beta", exp: aliceExp, why: "beta tester"},
				"org-beta":     {value: `true`, kind: "allow-list", source: "allow-list:org"},
				"theme":        {value: `"dark"`, kind: "default", source: "default"},
				"banner":       {kind: "kill-switch", source: "kill-switch"},
			},
			overrides: []string{"admin-panel/alice-beta/true", "new-checkout/alice-beta/true"},
		},
		{
			name: "user without role: the role gate hides admin-panel",
			path: "/namespaces/shop/v1/users/alice/flags",
			flags: map[string]flagWant{
				"admin-panel": {value: `false`, kind: "role-gate", source: "role-gate", hidden: true},
				"org-beta":    {value: `false`, kind: "kill-switch", source: "kill-switch"},
			},
			overrides: []string{"admin-panel/alice-beta/false", "new-checkout/alice-beta/true"},
		},
		{
			name: "user with a free attribute",
			path: "/v1/users/bob/flags?attr.plan=pro",
			flags: map[string]flagWant{
				"theme": {value: `"neon"`, kind: "rule", source: "rule:pro"},
			},
		},
		{
			name: "eligible device of a user",
			path: "/v1/devices/tab-1/flags?deviceClass=tablet&userId=alice&role=admin",
			flags: map[string]flagWant{
				"theme":        {value: `"sepia"`, kind: "device-override", source: "device-override:shop/tab-1-qa", object: "tab-1-qa", exp: tabExp, why: "QA tablet"},
				"new-checkout": {value: `true`, kind: "user-override", source: "user-override:shop/alice-beta", object: "alice-beta", exp: aliceExp, why: "beta tester"},
			},
			overrides: []string{"theme/tab-1-qa/true", "admin-panel/alice-beta/true", "new-checkout/alice-beta/true"},
		},
		{
			name: "charger gets no override",
			path: "/v1/devices/tab-1/flags?deviceClass=charger&userId=alice&role=admin",
			flags: map[string]flagWant{
				"theme":       {value: `"dark"`, kind: "default", source: "default"},
				"admin-panel": {value: `true`, kind: "default", source: "default"},
			},
			overrides: []string{"theme/tab-1-qa/false", "admin-panel/alice-beta/false", "new-checkout/alice-beta/false"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(h, http.MethodGet, tc.path, "")
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got viewBody
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Namespace != "shop" {
				t.Errorf("namespace %q", got.Namespace)
			}
			for key, w := range tc.flags {
				f, ok := got.Flags[key]
				if !ok {
					t.Errorf("%s: missing from %s", key, rec.Body)
					continue
				}
				value := ""
				if f.Value != nil {
					b, _ := json.Marshal(f.Value)
					value = string(b)
				}
				if value != w.value || f.SourceKind != w.kind || f.Source != w.source || f.Hidden != w.hidden {
					t.Errorf("%s: value %s, sourceKind %q, source %q, hidden %v; want %s, %q, %q, %v",
						key, value, f.SourceKind, f.Source, f.Hidden, w.value, w.kind, w.source, w.hidden)
				}
				switch {
				case w.object == "" && f.Override != nil:
					t.Errorf("%s: override %+v, want none", key, *f.Override)
				case w.object != "" && f.Override == nil:
					t.Errorf("%s: no override, want %s", key, w.object)
				case w.object != "" && (f.Override.Object.Name != w.object || f.Override.Object.Namespace != "shop" ||
					f.Override.ExpiresAt != w.exp || f.Override.Reason != w.why || !f.Override.Applied):
					t.Errorf("%s: override %+v, want %s expiring %s (%s), applied", key, *f.Override, w.object, w.exp, w.why)
				}
			}
			if tc.overrides != nil {
				var ovs []string
				for _, o := range got.Overrides {
					ovs = append(ovs, o.Key+"/"+o.Object.Name+"/"+map[bool]string{true: "true", false: "false"}[o.Applied])
				}
				if strings.Join(ovs, " ") != strings.Join(tc.overrides, " ") {
					t.Errorf("overrides %v, want %v", ovs, tc.overrides)
				}
			}
		})
	}

	bad := []struct {
		name, path, details string
	}{
		{"device view without a class", "/v1/devices/tab-1/flags?userId=alice", `query parameter "deviceClass" is required`},
		{"user view with a device but no class", "/v1/users/alice/flags?deviceId=tab-1", `query parameter "deviceClass" is required`},
		{"user id in the query of the user view", "/v1/users/alice/flags?userId=bob", `query parameter "userId": the user is the path's`},
		{"device id in the query of the device view", "/v1/devices/tab-1/flags?deviceId=x&deviceClass=tablet", `query parameter "deviceId": the device is the path's`},
		{"unknown parameter", "/v1/devices/tab-1/flags?deviceClass=tablet&plan=pro", `unknown query parameter "plan"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			check(t, do(h, http.MethodGet, tc.path, ""), http.StatusBadRequest, "", "INVALID_QUERY", tc.details)
		})
	}
}
