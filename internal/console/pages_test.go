/*
Copyright 2026 The flagops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package console

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/auditevent"
)

func TestFlagsPage(t *testing.T) {
	s, _ := newTestServer(t, nil)
	admin, viewer := signIn(t, s, "admin-token"), signIn(t, s, "viewer-token")
	t.Run("editor", func(t *testing.T) {
		body := checkPage(t, do(t, s, request{method: "GET", target: "/ns/shop/flags", cookie: admin}))
		contains(t, body, `id="count">5 of 5 flags<`, `id="switch-beta.dashboard"`, `id="rollout-beta.dashboard"`, `value="25"`,
			`<label for="rollout-beta.dashboard"`, `<span class="badge role">user</span>`, `id="overrides-theme">1 user<`,
			`id="gitops-managed">managed by Argo CD · read-only<`, `id="state-managed">off<`, "the new dashboard")
		lacks(t, body, `id="switch-managed"`, `action="/ns/shop/flags/managed/rollout"`)
	})
	t.Run("viewer", func(t *testing.T) {
		body := checkPage(t, do(t, s, request{method: "GET", target: "/ns/shop/flags", cookie: viewer}))
		contains(t, body, "read-only: you may not change flags in this namespace", `id="state-beta.dashboard">on<`, `id="rollout-beta.dashboard">25%<`)
		lacks(t, body, `id="switch-`, `action="/ns/shop/flags/`)
	})
	t.Run("filter", func(t *testing.T) {
		body := checkPage(t, do(t, s, request{method: "GET", target: "/ns/shop/flags?q=ADMIN", cookie: admin}))
		contains(t, body, `id="count">1 of 5 flags<`, `id="flag-theme"`, `value="ADMIN"`)
		lacks(t, body, `id="flag-beta.dashboard"`)
	})
	t.Run("bad namespace", func(t *testing.T) {
		rec := do(t, s, request{method: "GET", target: "/ns/Not_A_Namespace/flags", cookie: admin})
		if rec.Code != http.StatusBadRequest {
			t.Errorf("status %d, want 400", rec.Code)
		}
	})
}

func TestChangeFlag(t *testing.T) {
	tests := []struct {
		name   string
		target string
		form   url.Values
		// wantStatus, and wantLocation after a change or wantError when refused.
		wantStatus   int
		wantLocation string
		wantError    string
		// check reads the flag after the request.
		check func(f *v1.FeatureFlag) bool
	}{
		{"turn off", "/ns/shop/flags/beta.dashboard/enabled", url.Values{"enabled": {"false"}, "rv": {"5"}, "q": {"beta"}},
			http.StatusSeeOther, "/ns/shop/flags?done=off&flag=beta.dashboard&q=beta", "", func(f *v1.FeatureFlag) bool { return !f.Spec.Enabled }},
		{"rollout", "/ns/shop/flags/beta.dashboard/rollout", url.Values{"percentage": {"50"}, "rv": {"5"}},
			http.StatusSeeOther, "/ns/shop/flags?done=rollout&flag=beta.dashboard&q=", "", func(f *v1.FeatureFlag) bool { return f.Spec.Rollout.Percentage == 50 }},
		{"rollout out of range", "/ns/shop/flags/beta.dashboard/rollout", url.Values{"percentage": {"150"}, "rv": {"5"}},
			http.StatusUnprocessableEntity, "", `percentage &#34;150&#34;: want a whole number from 0 to 100`, func(f *v1.FeatureFlag) bool { return f.Spec.Rollout.Percentage == 25 }},
		{"bad switch value", "/ns/shop/flags/beta.dashboard/enabled", url.Values{"enabled": {"maybe"}, "rv": {"5"}},
			http.StatusUnprocessableEntity, "", `enabled: want &#34;true&#34; or &#34;false&#34;`, func(f *v1.FeatureFlag) bool { return f.Spec.Enabled }},
		{"changed meanwhile", "/ns/shop/flags/beta.dashboard/enabled", url.Values{"enabled": {"false"}, "rv": {"4"}},
			http.StatusConflict, "", "FeatureFlag shop/beta.dashboard changed meanwhile", func(f *v1.FeatureFlag) bool { return f.Spec.Enabled }},
		{"managed by Argo CD", "/ns/shop/flags/managed/enabled", url.Values{"enabled": {"true"}, "rv": {"5"}},
			http.StatusUnprocessableEntity, "", "FeatureFlag shop/managed is managed by Argo CD (label app.kubernetes.io/instance)", nil},
		{"no such flag", "/ns/shop/flags/nope/enabled", url.Values{"enabled": {"true"}, "rv": {"5"}},
			http.StatusNotFound, "", "not found", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := newTestServer(t, nil)
			rec := do(t, s, request{method: "POST", target: tt.target, cookie: signIn(t, s, "admin-token"), form: tt.form})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantLocation != "" && rec.Header().Get("Location") != tt.wantLocation {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), tt.wantLocation)
			}
			if tt.wantError != "" {
				contains(t, checkPage(t, rec), `id="error"`, tt.wantError)
			}
			if tt.check != nil {
				f := &v1.FeatureFlag{}
				if err := b.c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "beta.dashboard"}, f); err != nil {
					t.Fatal(err)
				}
				if !tt.check(f) {
					t.Errorf("the flag is not as expected after the request: %+v", f.Spec)
				}
			}
			// A conflict is the API server's answer to a write attempted with the stale
			// resourceVersion; other refusals attempt no write.
			if want := tt.wantStatus == http.StatusSeeOther; tt.wantStatus != http.StatusConflict && (b.writesBy("alice") > 0) != want {
				t.Errorf("%d writes, want some: %v", b.writesBy("alice"), want)
			}
		})
	}
	t.Run("notice after the change", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		body := checkPage(t, do(t, s, request{method: "GET", target: "/ns/shop/flags?done=rollout&flag=beta.dashboard", cookie: signIn(t, s, "admin-token")}))
		contains(t, body, `id="notice">beta.dashboard: rollout set to 25%.<`)
	})
}

func TestSubjectPage(t *testing.T) {
	s, _ := newTestServer(t, nil)
	admin, viewer := signIn(t, s, "admin-token"), signIn(t, s, "viewer-token")
	runPages(t, s, []pageCase{
		{"alice's flags", admin, "/ns/shop/users/alice?role=user", 0, []string{
			`id="value-theme">&#34;sepia&#34;<`, `id="source-theme" title="user-override:shop/user-alice">user override<`,
			`id="expires-theme">2030-01-08T12:00:00Z<`, `id="reason-theme">pilot customer<`, `id="source-limit" title="default">default<`,
			`id="source-managed" title="kill-switch">kill switch<`, `id="edit-theme"`, `id="clear-theme"`, `name="version" value="user-alice=5"`,
		}, []string{`id="clear-limit"`, `id="editor"`}},
		{"a role the gate keeps out", admin, "/ns/shop/users/alice?role=guest", 0, []string{`id="source-theme" title="role-gate">role gate<`, "left out of bulk evaluation"}, nil},
		{"Boolean editor: a switch", admin, "/ns/shop/users/dave?edit=beta.dashboard", 0, []string{
			`id="editor"`, `<input type="hidden" name="value.beta.dashboard" value="false">`, `type="checkbox" role="switch" id="value-input" name="value.beta.dashboard" value="true"`,
			`<label for="value-input">`, `<label for="expires">`, `<label for="reason">`, `id="save"`,
		}, nil},
		{"Number editor", admin, "/ns/shop/users/dave?edit=limit", 0, []string{`type="number" step="any" id="value-input" name="value.limit" value="10"`}, nil},
		{"String editor", admin, "/ns/shop/users/alice?edit=theme&role=user", 0, []string{`type="text" id="value-input" name="value.theme" value="sepia"`, `action="/ns/shop/users/alice?role=user" id="editor"`}, nil},
		{"Object editor", admin, "/ns/shop/users/dave?edit=banner", 0, []string{`<textarea id="value-input" name="value.banner"`, "checked against the flag's schema"}, nil},
		{"viewer", viewer, "/ns/shop/users/alice?edit=theme", 0, []string{"read-only: you may not change its overrides", `id="value-theme"`},
			[]string{`id="edit-`, `id="clear-`, `id="editor"`}},
		{"object from git", admin, "/ns/shop/users/gina?edit=limit", 0, []string{`id="readonly">UserFlagOverride shop/user-gina is managed by Argo CD`, `id="gitops-limit"`},
			[]string{`id="edit-`, `id="clear-`, `id="editor"`}},
		{"device without its class", admin, "/ns/shop/devices/tab-1", 0, []string{`id="need-class"`, `id="ctx-class"`}, []string{`id="effective"`}},
		{"device", admin, "/ns/shop/devices/tab-1?class=tablet", 0, []string{`id="source-limit"`, `id="edit-limit"`, `action="/ns/shop/devices/tab-1"`}, nil},
		{"an id that needs escaping", admin, "/ns/shop/users/a%2Fb%20c", 0, []string{`<code id="subject">a/b c</code>`, `href="/ns/shop/users/a%2Fb%20c?edit=limit#editor"`}, nil},
	})
	rec := do(t, s, request{method: "GET", target: "/ns/shop/users?id=a/b", cookie: admin})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ns/shop/users/a%2Fb" {
		t.Errorf("user finder: status %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = do(t, s, request{method: "GET", target: "/ns/shop/devices?id=tab-1&class=tablet", cookie: admin})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ns/shop/devices/tab-1?class=tablet" {
		t.Errorf("device finder: status %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestSave(t *testing.T) {
	save := func(v url.Values) url.Values {
		out := url.Values{"version": {""}}
		for k, x := range v {
			out[k] = x
		}
		return out
	}
	tests := []struct {
		name   string
		target string
		form   url.Values
		// wantStatus, and wantLocation after a save or wantError when refused.
		wantStatus   int
		wantLocation string
		wantError    string
	}{
		{"new override with expiry and reason", "/ns/shop/users/dave?role=user",
			save(url.Values{"key": {"limit"}, "value.limit": {"42"}, "expires": {"7d"}, "reason": {"pilot (TICKET-1)"}}),
			http.StatusSeeOther, "/ns/shop/users/dave?role=user&saved=limit", ""},
		{"Boolean switch checked", "/ns/shop/users/dave", save(url.Values{"key": {"beta.dashboard"}, "value.beta.dashboard": {"false", "true"}}),
			http.StatusSeeOther, "/ns/shop/users/dave?saved=beta.dashboard", ""},
		{"a batch, the last of a key wins", "/ns/shop/users/dave", save(url.Values{"key": {"limit", "theme", "limit"}, "value.limit": {"7"}, "value.theme": {"sepia"}}),
			http.StatusSeeOther, "/ns/shop/users/dave?saved=limit%2Ctheme", ""},
		{"value not a number", "/ns/shop/users/dave", save(url.Values{"key": {"limit"}, "value.limit": {"abc"}}),
			http.StatusUnprocessableEntity, "", "limit=abc: number flag needs a JSON number value"},
		{"value against the schema", "/ns/shop/users/dave", save(url.Values{"key": {"limit"}, "value.limit": {"500"}}),
			http.StatusUnprocessableEntity, "", "limit=500:"},
		{"JSON that does not parse", "/ns/shop/users/dave", save(url.Values{"key": {"banner"}, "value.banner": {"{text:"}}),
			http.StatusUnprocessableEntity, "", "banner={text:: object flag needs a JSON object value"},
		{"bad expiry", "/ns/shop/users/dave", save(url.Values{"key": {"limit"}, "value.limit": {"1"}, "expires": {"soon"}}),
			http.StatusUnprocessableEntity, "", "expires &#34;soon&#34;: want a duration"},
		{"expiry in the past", "/ns/shop/users/dave", save(url.Values{"key": {"limit"}, "value.limit": {"1"}, "expires": {"2020-01-01"}}),
			http.StatusUnprocessableEntity, "", "expires 2020-01-01T00:00:00Z: must be in the future"},
		{"reason too long", "/ns/shop/users/dave", save(url.Values{"key": {"limit"}, "value.limit": {"1"}, "reason": {strings.Repeat("r", 501)}}),
			http.StatusUnprocessableEntity, "", "reason: 501 characters, at most 500"},
		{"no value", "/ns/shop/users/dave", save(url.Values{"key": {"limit"}}), http.StatusUnprocessableEntity, "", "value.limit: missing"},
		{"unknown flag", "/ns/shop/users/dave", save(url.Values{"key": {"nope"}, "value.nope": {"1"}}), http.StatusUnprocessableEntity, "", `flag &#34;nope&#34; not found in namespace &#34;shop&#34;`},
		{"changed meanwhile", "/ns/shop/users/alice", url.Values{"key": {"limit"}, "value.limit": {"1"}, "version": {"user-alice=4"}},
			http.StatusConflict, "", "The overrides of user &#34;alice&#34; in shop changed meanwhile"},
		{"object from git", "/ns/shop/users/gina", url.Values{"key": {"limit"}, "value.limit": {"1"}, "version": {"user-gina=5"}},
			http.StatusUnprocessableEntity, "", "UserFlagOverride shop/user-gina is managed by Argo CD"},
		{"clear", "/ns/shop/users/alice/clear", url.Values{"key": {"theme"}, "version": {"user-alice=5"}},
			http.StatusSeeOther, "/ns/shop/users/alice?cleared=theme", ""},
		{"clear, changed meanwhile", "/ns/shop/users/alice/clear", url.Values{"key": {"theme"}, "version": {""}},
			http.StatusConflict, "", "changed meanwhile"},
		{"clear of a key with no override", "/ns/shop/users/alice/clear", url.Values{"key": {"limit"}, "version": {"user-alice=5"}},
			http.StatusUnprocessableEntity, "", `user &#34;alice&#34; has no override for &#34;limit&#34;`},
		{"clear of an object from git", "/ns/shop/users/gina/clear", url.Values{"key": {"limit"}, "version": {"user-gina=5"}},
			http.StatusUnprocessableEntity, "", "UserFlagOverride shop/user-gina is managed by Argo CD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := newTestServer(t, nil)
			rec := do(t, s, request{method: "POST", target: tt.target, cookie: signIn(t, s, "admin-token"), form: tt.form})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantLocation != "" {
				if got := rec.Header().Get("Location"); got != tt.wantLocation {
					t.Errorf("Location %q, want %q", got, tt.wantLocation)
				}
				if b.writesBy("alice") == 0 {
					t.Error("nothing was written")
				}
				return
			}
			body := checkPage(t, rec)
			contains(t, body, `id="error"`, tt.wantError)
			if n := b.writesBy("alice"); n != 0 {
				t.Errorf("%d writes after a refused save", n)
			}
		})
	}
}

func TestSaveStoresAndShows(t *testing.T) {
	s, b := newTestServer(t, nil)
	cookie := signIn(t, s, "admin-token")
	form := url.Values{"key": {"limit"}, "value.limit": {"42"}, "expires": {"7d"}, "reason": {"pilot (TICKET-1)"}, "version": {""}}
	rec := do(t, s, request{method: "POST", target: "/ns/shop/users/dave", cookie: cookie, form: form})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	o := &v1.UserFlagOverride{}
	if err := b.c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "user-dave"}, o); err != nil {
		t.Fatal(err)
	}
	if o.Spec.UserID != "dave" || len(o.Spec.Flags) != 1 || string(o.Spec.Flags[0].Value.Raw) != "42" ||
		o.Spec.Reason != "pilot (TICKET-1)" || o.Spec.ExpiresAt == nil || !o.Spec.ExpiresAt.Time.Equal(testNow.Add(7*24*time.Hour)) {
		t.Errorf("stored %+v", o.Spec)
	}
	extras := b.extras
	want := map[string]string{audit.ExtraRoute: "POST /ns/{ns}/users/{id}", audit.ExtraSourceIP: "192.0.2.7", audit.ExtraUserAgent: "console-test/1.0"}
	for k, v := range want {
		if extras[k] != v {
			t.Errorf("extra %s = %q, want %q", k, extras[k], v)
		}
	}
	body := checkPage(t, do(t, s, request{method: "GET", target: rec.Header().Get("Location"), cookie: cookie}))
	contains(t, body, `id="notice">Saved limit.`, `id="value-limit">42<`, `id="source-limit" title="user-override:shop/user-dave">user override<`,
		`id="reason-limit">pilot (TICKET-1)<`, `id="expires-limit">2030-01-08T12:00:00Z<`, `id="clear-limit"`)
	// A save with the expiry and the reason left empty keeps them, as the editor says.
	contains(t, checkPage(t, do(t, s, request{method: "GET", target: "/ns/shop/users/dave?edit=limit", cookie: cookie})),
		"empty keeps the object's expiry", "empty keeps its reason")
	form = url.Values{"key": {"limit"}, "value.limit": {"43"}, "version": {"user-dave=" + o.ResourceVersion}}
	if rec := do(t, s, request{method: "POST", target: "/ns/shop/users/dave", cookie: cookie, form: form}); rec.Code != http.StatusSeeOther {
		t.Fatalf("second save: status %d: %s", rec.Code, rec.Body.String())
	}
	if err := b.c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "user-dave"}, o); err != nil {
		t.Fatal(err)
	}
	if string(o.Spec.Flags[0].Value.Raw) != "43" || o.Spec.Reason != "pilot (TICKET-1)" || o.Spec.ExpiresAt == nil || !o.Spec.ExpiresAt.Time.Equal(testNow.Add(7*24*time.Hour)) {
		t.Errorf("after a save without expiry and reason: %+v", o.Spec)
	}
}

func TestForgedImpersonationHeaderIsIgnored(t *testing.T) {
	s, b := newTestServer(t, nil)
	cookie := signIn(t, s, "viewer-token")
	rec := do(t, s, request{method: "GET", target: "/ns/shop/users/alice", cookie: cookie,
		header: map[string]string{"Impersonate-User": "alice", "Impersonate-Group": "system:masters"}})
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	for _, u := range b.users {
		if u != "bob" {
			t.Errorf("the console acted as %q for bob's request", u)
		}
	}
	lacks(t, rec.Body.String(), `id="edit-`)
}

func TestParseExpiry(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"90m", testNow.Add(90 * time.Minute), false},
		{"7d", testNow.Add(7 * 24 * time.Hour), false},
		{"2030-02-01T10:00:00+01:00", time.Date(2030, 2, 1, 9, 0, 0, 0, time.UTC), false},
		{"2030-02-01T10:00", time.Date(2030, 2, 1, 10, 0, 0, 0, time.UTC), false},
		{"2030-02-01", time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC), false},
		{"-1h", time.Time{}, true},
		{"tomorrow", time.Time{}, true},
	}
	for _, tt := range tests {
		f, err := parseExpiry(tt.in, testNow)
		switch {
		case tt.wantErr:
			if err == nil || !strings.HasPrefix(err.Error(), "expires ") {
				t.Errorf("parseExpiry(%q): error %v, want one naming expires", tt.in, err)
			}
		case err != nil:
			t.Errorf("parseExpiry(%q): %v", tt.in, err)
		case tt.want.IsZero() != (f == nil):
			t.Errorf("parseExpiry(%q): expiry %v", tt.in, f != nil)
		case f != nil && !f(testNow).Time.Equal(tt.want):
			t.Errorf("parseExpiry(%q) = %v, want %v", tt.in, f(testNow).Time, tt.want)
		}
	}
}

func TestSubjectNotice(t *testing.T) {
	tests := []struct {
		query, want string
	}{
		{"saved=limit,theme", "Saved limit, theme. The values below are the new effective values."},
		{"cleared=theme", "Cleared the override of theme. The values below are the new effective values."},
		{"saved=", "Nothing changed: the values were already those."},
		{"saved=<script>,a%20b", "Nothing changed: the values were already those."},
		{"", ""},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		if got := subjectNotice(q); got != tt.want {
			t.Errorf("subjectNotice(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestFlagPage(t *testing.T) {
	s, _ := newTestServer(t, nil)
	admin, viewer := signIn(t, s, "admin-token"), signIn(t, s, "viewer-token")
	runPages(t, s, []pageCase{
		{"spec and overrides", admin, "/ns/shop/flags/theme", http.StatusOK, []string{
			`id="flag-key">theme<`, `<code>&#34;light&#34;</code>`, `<code>&#34;dark&#34;</code>`, `<span class="badge role">user</span>`,
			`user <a href="/ns/shop/users/alice">alice</a>`, `<code>&#34;sepia&#34;</code>`, `id="switch-theme"`, `name="return" value="flag"`,
			`id="simulator"`, `<label for="sim-attrs">`,
		}, []string{`id="sim-result"`}},
		{"viewer", viewer, "/ns/shop/flags/theme", http.StatusOK, []string{`id="state-theme">on<`}, []string{`id="switch-theme"`}},
		{"a Boolean flag's implied values", admin, "/ns/shop/flags/beta.dashboard", http.StatusOK, []string{
			`<dt>Value when on</dt><dd><code>true</code></dd>`, `<dt>Value when off</dt><dd><code>false</code></dd>`}, nil},
		{"GitOps", admin, "/ns/shop/flags/managed", http.StatusOK, []string{`id="gitops-managed">managed by Argo CD`}, []string{`id="switch-managed"`}},
		{"simulator: a user override", admin, "/ns/shop/flags/theme?sim=1&sim-user=alice&sim-role=user", http.StatusOK, []string{
			`id="sim-value">&#34;sepia&#34;<`, `id="sim-source" title="user-override:shop/user-alice">user override<`,
			`<code>user-override</code> <strong>applied</strong>`, `value="alice"`,
		}, nil},
		{"simulator: the role gate", admin, "/ns/shop/flags/theme?sim=1&sim-user=alice", http.StatusOK, []string{`id="sim-source" title="role-gate">role gate<`}, nil},
		{"simulator: an attribute", admin, "/ns/shop/flags/beta.dashboard?sim=1&sim-user=zed&sim-attrs=plan%3Dpro%0A", http.StatusOK, []string{`id="sim-trace"`, `<code>rollout</code>`}, nil},
		{"simulator: a device without its class", admin, "/ns/shop/flags/theme?sim=1&sim-device=tab-1", http.StatusOK, []string{`id="sim-error">device class: required with a device`}, []string{`id="sim-trace"`}},
		{"simulator: a well-known attribute", admin, "/ns/shop/flags/theme?sim=1&sim-attrs=role%3Dadmin", http.StatusOK, []string{`id="sim-error">attributes: role is set by its own field`}, nil},
		{"simulator: not NAME=VALUE", admin, "/ns/shop/flags/theme?sim=1&sim-attrs=plan", http.StatusOK, []string{`id="sim-error">attributes: &#34;plan&#34;: want NAME=VALUE`}, nil},
		{"no such flag", admin, "/ns/shop/flags/nope", http.StatusNotFound, []string{"FeatureFlag shop/nope not found"}, nil},
	})
	rec := do(t, s, request{method: "POST", target: "/ns/shop/flags/theme/enabled", cookie: admin, form: url.Values{"enabled": {"false"}, "rv": {"5"}, "return": {"flag"}}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ns/shop/flags/theme?done=off" {
		t.Fatalf("switch from the flag page: status %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
	contains(t, checkPage(t, do(t, s, request{method: "GET", target: "/ns/shop/flags/theme?done=off", cookie: admin})), `id="notice">theme: master switch turned off.<`)
}

// TestFlagHistory checks the flag page's history: the Events the manager records about the
// flag and its overrides (audited changes with their actor, values and the console's
// request, other Events with their message), newest first, and a user who may not list
// Events.
func TestFlagHistory(t *testing.T) {
	s, b := newTestServer(t, nil)
	b.listErr = func(user string, list client.ObjectList) error {
		if _, ok := list.(*corev1.EventList); ok && user == "bob" {
			return apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "", errors.New(`User "bob" cannot list resource "events" in API group "" in the namespace "shop"`))
		}
		return nil
	}
	ctx := context.Background()
	event := func(name, kind, obj, typ, reason, action, msg string, ago time.Duration) {
		t.Helper()
		e := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "shop", Name: name},
			InvolvedObject: corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: kind, Namespace: "shop", Name: obj},
			Type:           typ, Reason: reason, Action: action, Message: msg, ReportingController: "flagops-manager",
			EventTime: metav1.NewMicroTime(testNow.Add(-ago)),
		}
		if err := b.c.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	change := func(name, kind, obj, action string, n auditevent.Note, ago time.Duration) {
		t.Helper()
		event(name, kind, obj, corev1.EventTypeNormal, auditevent.Reason(action), action, auditevent.Format(n), ago)
	}
	raw := func(s string) map[string]json.RawMessage {
		return map[string]json.RawMessage{"theme": json.RawMessage(s)}
	}
	change("c1", "UserFlagOverride", "user-alice", "user_override.created", auditevent.Note{SubjectKind: auditevent.SubjectUser, Subject: "alice",
		Generation: 1, Actor: auditevent.Actor{Username: "carol", Verified: true},
		Request: &auditevent.Request{Route: "POST /ns/{ns}/users/{id}", SourceIP: "192.0.2.7", UserAgent: "Mozilla/5.0"},
		After:   raw(`{"value":"sepia"}`), RecordID: strings.Repeat("a", 32)}, 30*time.Minute)
	change("c2", "FeatureFlag", "theme", "flag.updated", auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "theme",
		Generation: 3, Actor: auditevent.Actor{Username: "kubectl-flagops"},
		Before: map[string]json.RawMessage{"enabled": json.RawMessage(`false`)}, After: map[string]json.RawMessage{"enabled": json.RawMessage(`true`)},
		RecordID: strings.Repeat("b", 32)}, 10*time.Minute)
	event("e1", "UserFlagOverride", "user-alice", corev1.EventTypeWarning, v1.EventReasonInvalidValue, "", "flag theme is not served: does not match schema", time.Hour)
	change("c3", "FeatureFlag", "limit", "flag.updated", auditevent.Note{SubjectKind: auditevent.SubjectFlag, Subject: "limit",
		Generation: 2, Actor: auditevent.Actor{Username: "dave", Verified: true}, After: map[string]json.RawMessage{"enabled": json.RawMessage(`true`)},
		RecordID: strings.Repeat("c", 32)}, 5*time.Minute)

	admin, viewer := signIn(t, s, "admin-token"), signIn(t, s, "viewer-token")
	runPages(t, s, []pageCase{
		{"changes and Events, newest first", admin, "/ns/shop/flags/theme", http.StatusOK, []string{
			`id="history-0"`, `id="history-actor-0">kubectl-flagops (unverified)<`, `<code>enabled</code>: <code class="before">false</code> → <code class="after">true</code>`,
			`id="history-actor-1">carol<`, `<code>theme</code>: <code class="before">—</code> → <code class="after">{&#34;value&#34;:&#34;sepia&#34;}</code>`,
			`id="history-details-1">via POST /ns/{ns}/users/{id} from 192.0.2.7 using Mozilla/5.0<`,
			`id="history-2" class="warning"`, `id="history-actor-2">flagops-manager<`, `id="history-details-2">flag theme is not served: does not match schema<`,
		}, []string{`id="history-3"`, "dave", `id="history-error"`}},
		{"another flag's history", admin, "/ns/shop/flags/limit", http.StatusOK, []string{`id="history-actor-0">dave<`}, []string{`id="history-1"`}},
		{"no Events", admin, "/ns/shop/flags/banner", http.StatusOK, []string{"No Events about this flag."}, []string{`id="history-0"`}},
		{"a user who may not list Events", viewer, "/ns/shop/flags/theme", http.StatusOK, []string{
			`id="history-error">The history cannot be shown: Error from server (Forbidden): events is forbidden: User &#34;bob&#34; cannot list resource &#34;events&#34;`,
			`id="spec"`,
		}, []string{`id="history-0"`}},
	})
}

func TestOverridesPage(t *testing.T) {
	s, _ := newTestServer(t, nil)
	admin, viewer := signIn(t, s, "admin-token"), signIn(t, s, "viewer-token")
	runPages(t, s, []pageCase{
		{"every entry, expiring soonest first", admin, "/ns/shop/overrides", 0, []string{
			`id="count">2 of 2 override entries`, `value="user/user-alice/5" id="select-user-user-alice-theme"`,
			`<label for="select-user-user-alice-theme" class="visually-hidden">`, `id="bulk-enable"`, `id="bulk-disable"`,
			`user <a href="/ns/shop/users/alice">alice</a>`, `<a href="/ns/shop/flags/theme"><code>theme</code></a>`,
			`id="state-user-user-gina-limit">applies<`, `managed by Argo CD · read-only`,
		}, []string{`id="select-user-user-gina-limit"`}},
		{"search", admin, "/ns/shop/overrides?q=GINA", 0, []string{`id="count">1 of 2`, `id="entry-user-user-gina-limit"`}, []string{`id="entry-user-user-alice-theme"`}},
		{"devices", admin, "/ns/shop/overrides?kind=device", 0, []string{`id="count">0 of 2`}, []string{`id="bulk-enable"`}},
		{"expiring within a day", admin, "/ns/shop/overrides?within=1d", 0, []string{`id="count">0 of 2`}, nil},
		{"expiring within 8 days", admin, "/ns/shop/overrides?within=8d", 0, []string{`id="count">1 of 2`, `id="entry-user-user-alice-theme"`}, nil},
		{"viewer", viewer, "/ns/shop/overrides", 0, []string{"read-only: you may not change overrides", `id="entry-user-user-alice-theme"`}, []string{`name="select"`, `id="bulk-`}},
		{"notice after a bulk change", admin, "/ns/shop/overrides?bulk=disabled&n=2", 0, []string{`id="notice">Disabled 2 override objects.<`}, nil},
	})
	body := do(t, s, request{method: "GET", target: "/ns/shop/overrides", cookie: admin}).Body.String()
	if strings.Index(body, `id="entry-user-user-alice-theme"`) > strings.Index(body, `id="entry-user-user-gina-limit"`) {
		t.Error("the entry that expires is not listed first")
	}
	if rec := do(t, s, request{method: "GET", target: "/ns/shop/overrides?within=soon", cookie: admin}); rec.Code != http.StatusUnprocessableEntity {
		t.Errorf("a bad duration: status %d, want 422", rec.Code)
	}
}

func TestBulkSwitch(t *testing.T) {
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		// wantLocation after the change, or wantError when refused.
		wantLocation, wantError string
		wantEnabled             bool
	}{
		{"disable", url.Values{"enabled": {"false"}, "select": {"user/user-alice/5", "user/user-alice/5"}, "q": {"alice"}},
			http.StatusSeeOther, "/ns/shop/overrides?bulk=disabled&n=1&q=alice", "", false},
		{"changed meanwhile", url.Values{"enabled": {"false"}, "select": {"user/user-alice/4"}}, http.StatusConflict, "", "UserFlagOverride shop/user-alice changed meanwhile", true},
		{"gone meanwhile", url.Values{"enabled": {"false"}, "select": {"user/user-zed/4"}}, http.StatusConflict, "", "The user override shop/user-zed changed meanwhile", true},
		{"managed by Argo CD", url.Values{"enabled": {"false"}, "select": {"user/user-alice/5", "user/user-gina/5"}}, http.StatusUnprocessableEntity, "", "UserFlagOverride shop/user-gina is managed by Argo CD", true},
		{"nothing selected", url.Values{"enabled": {"false"}}, http.StatusUnprocessableEntity, "", "select: no override selected", true},
		{"a bad selection", url.Values{"enabled": {"false"}, "select": {"secret/x/1"}}, http.StatusUnprocessableEntity, "", "want KIND/NAME/RESOURCEVERSION", true},
		{"a bad switch", url.Values{"enabled": {"maybe"}, "select": {"user/user-alice/5"}}, http.StatusUnprocessableEntity, "", "enabled: want", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := newTestServer(t, nil)
			rec := do(t, s, request{method: "POST", target: "/ns/shop/overrides/enabled", cookie: signIn(t, s, "admin-token"), form: tt.form})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantLocation != "" && rec.Header().Get("Location") != tt.wantLocation {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), tt.wantLocation)
			}
			if tt.wantError != "" {
				contains(t, checkPage(t, rec), tt.wantError)
				if n := b.writesBy("alice"); n != 0 {
					t.Errorf("%d writes after a refused bulk change", n)
				}
			}
			o := &v1.UserFlagOverride{}
			if err := b.c.Get(context.Background(), client.ObjectKey{Namespace: "shop", Name: "user-alice"}, o); err != nil {
				t.Fatal(err)
			}
			if enabled := o.Spec.Enabled == nil || *o.Spec.Enabled; enabled != tt.wantEnabled {
				t.Errorf("user-alice enabled: %v, want %v", enabled, tt.wantEnabled)
			}
		})
	}
}

// pageCase is a GET of a page: the status it answers (0 means 200), what it must show and
// what it must not.
type pageCase struct {
	name   string
	cookie *http.Cookie
	target string
	status int
	want   []string
	unwant []string
}

func runPages(t *testing.T, s http.Handler, cases []pageCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, s, request{method: "GET", target: tt.target, cookie: tt.cookie})
			if want := cmp.Or(tt.status, http.StatusOK); rec.Code != want {
				t.Fatalf("status %d, want %d: %s", rec.Code, want, rec.Body.String())
			}
			body := checkPage(t, rec)
			contains(t, body, tt.want...)
			lacks(t, body, tt.unwant...)
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}
