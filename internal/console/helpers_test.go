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
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/flagadmin"
	"github.com/flagops/flagops/internal/gitops"
)

// testNow is the unit tests' clock.
var testNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// fakeBackend serves the unit tests: tokens map to users, every user's client is one fake
// API server (which enforces no RBAC), and writers says who may write. It records what the
// console asked of it.
type fakeBackend struct {
	tokens  map[string]*User
	writers map[string]bool
	c       client.Client
	// listErr, when set, may refuse a List of the users' clients.
	listErr func(user string, list client.ObjectList) error

	mu sync.Mutex
	// writes counts the writes by user; extras are those of the last client made.
	writes map[string]int
	extras map[string]string
	users  []string
}

func (b *fakeBackend) review(_ context.Context, token string) (*User, error) {
	if u, ok := b.tokens[token]; ok {
		return u, nil
	}
	return nil, errUnauthenticated
}

func (b *fakeBackend) client(s *session, extras map[string]string) (client.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extras = extras
	b.users = append(b.users, s.user.Name)
	count := func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.writes[s.user.Name]++
	}
	return interceptor.NewClient(b.c.(client.WithWatch), interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if b.listErr != nil {
				if err := b.listErr(s.user.Name, list); err != nil {
					return err
				}
			}
			return c.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count()
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			count()
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			count()
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count()
			return c.Delete(ctx, obj, opts...)
		},
	}), nil
}

func (b *fakeBackend) allowed(_ context.Context, s *session, _, verb, _ string) (bool, error) {
	switch verb {
	case "get", "list", "watch":
		return true, nil
	}
	return b.writers[s.user.Name], nil
}

func (b *fakeBackend) writesBy(user string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writes[user]
}

func js(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: json.RawMessage(s)} }

// testObjects is namespace shop: a flag of every type, one that Argo CD manages, alice's
// override of theme with an expiry and a reason, and gina's override object from git.
func testObjects() []client.Object {
	meta := func(name string, labels map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels, ResourceVersion: "5", CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour))}
	}
	argo := map[string]string{gitops.ArgoCDInstanceLabel: "flags"}
	expires := metav1.NewTime(testNow.Add(7 * 24 * time.Hour))
	return []client.Object{
		&v1.FeatureFlag{ObjectMeta: meta("beta.dashboard", nil), Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true,
			Description: "the new dashboard", Rollout: &v1.Rollout{Percentage: 25}}},
		&v1.FeatureFlag{ObjectMeta: meta("theme", nil), Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeString, Enabled: true,
			Value: js(`"light"`), OffValue: js(`"dark"`), AllowedRoles: []string{"user", "admin"}}},
		&v1.FeatureFlag{ObjectMeta: meta("limit", nil), Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeNumber, Enabled: true,
			Value: js(`10`), OffValue: js(`0`), Schema: js(`{"type":"number","maximum":100}`)}},
		&v1.FeatureFlag{ObjectMeta: meta("banner", nil), Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Enabled: true,
			Value: js(`{"text":"Sale"}`), OffValue: js(`{}`)}},
		&v1.FeatureFlag{ObjectMeta: meta("managed", argo), Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: false}},
		&v1.UserFlagOverride{ObjectMeta: meta("user-alice", nil), Spec: v1.UserFlagOverrideSpec{UserID: "alice",
			FlagOverrideSpec: v1.FlagOverrideSpec{ExpiresAt: &expires, Reason: "pilot customer",
				Flags: []v1.FlagOverrideEntry{{Key: "theme", Value: js(`"sepia"`)}}}}},
		&v1.UserFlagOverride{ObjectMeta: meta("user-gina", argo), Spec: v1.UserFlagOverrideSpec{UserID: "gina",
			FlagOverrideSpec: v1.FlagOverrideSpec{Flags: []v1.FlagOverrideEntry{{Key: "limit", Value: js(`20`)}}}}},
	}
}

// testKey is the unit tests' session key.
var testKey = []byte("0123456789abcdef0123456789abcdef")

func newTestServer(t *testing.T, mod func(*Options)) (*Server, *fakeBackend) {
	t.Helper()
	b := &fakeBackend{
		tokens: map[string]*User{
			"admin-token":  {Name: "alice", Groups: []string{"flag-editors", "system:authenticated"}},
			"viewer-token": {Name: "bob", Groups: []string{"flag-viewers", "system:authenticated"}},
		},
		writers: map[string]bool{"alice": true},
		c:       fake.NewClientBuilder().WithScheme(flagadmin.NewScheme()).WithObjects(testObjects()...).Build(),
		writes:  map[string]int{},
	}
	opts := Options{Identity: IdentityImpersonate, SessionKey: testKey, Now: func() time.Time { return testNow }, Logger: testr.New(t)}
	if mod != nil {
		mod(&opts)
	}
	s, err := newServer(opts, b)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

// request is one request of a test.
type request struct {
	method, target string
	cookie         *http.Cookie
	form           url.Values
	header         map[string]string
}

func do(t *testing.T, s http.Handler, r request) *httptest.ResponseRecorder {
	t.Helper()
	var body *strings.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(r.method, "https://console.test"+r.target, body)
	req.RemoteAddr = "192.0.2.7:51000"
	req.Header.Set("User-Agent", "console-test/1.0")
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.cookie != nil {
		req.AddCookie(r.cookie)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// signIn signs in with token and returns the session cookie.
func signIn(t *testing.T, s http.Handler, token string) *http.Cookie {
	t.Helper()
	rec := do(t, s, request{method: "POST", target: "/signin", form: url.Values{"token": {token}}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign in: status %d: %s", rec.Code, rec.Body.String())
	}
	for _, c := range rec.Result().Cookies() {
		if c.Value != "" {
			return c
		}
	}
	t.Fatal("sign in set no cookie")
	return nil
}

// inline matches what the CSP forbids in a page: an inline script, a style element or
// attribute, an event handler attribute, a javascript: URL.
var inline = regexp.MustCompile(`(?i)<script(\s[^>]*)?>[^<]|<style|\sstyle=|\son[a-z]+=|javascript:`)

// checkPage checks what every page must have: the strict CSP and no inline script or style.
func checkPage(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if got := rec.Header().Get("Content-Security-Policy"); got != contentSecurityPolicy {
		t.Errorf("Content-Security-Policy = %q", got)
	}
	body := rec.Body.String()
	if m := inline.FindString(body); m != "" {
		t.Errorf("the page has inline script or style: %q", m)
	}
	return body
}

func contains(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}

func lacks(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("the page has %q", w)
		}
	}
}
