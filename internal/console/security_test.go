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
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSignIn(t *testing.T) {
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		// wantLocation is the redirect after a sign-in; wantError a part of the error shown.
		wantLocation, wantError string
	}{
		{"valid token", url.Values{"token": {"admin-token"}}, http.StatusSeeOther, "/", ""},
		{"back to the page asked for", url.Values{"token": {" admin-token\n"}, "next": {"/ns/shop/flags?q=beta"}}, http.StatusSeeOther, "/ns/shop/flags?q=beta", ""},
		{"never to another site", url.Values{"token": {"admin-token"}, "next": {"//evil.example/x"}}, http.StatusSeeOther, "/", ""},
		{"never to another scheme", url.Values{"token": {"admin-token"}, "next": {"https://evil.example/"}}, http.StatusSeeOther, "/", ""},
		{"token the API server rejects", url.Values{"token": {"nope"}}, http.StatusUnauthorized, "", "token: the API server does not accept the token"},
		{"no token", url.Values{"token": {"  "}}, http.StatusBadRequest, "", "token: paste a bearer token"},
		{"token too long for a cookie", url.Values{"token": {strings.Repeat("x", 3000)}}, http.StatusUnauthorized, "", "token:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, nil)
			rec := do(t, s, request{method: "POST", target: "/signin", form: tt.form})
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantLocation != "" {
				if got := rec.Header().Get("Location"); got != tt.wantLocation {
					t.Errorf("Location %q, want %q", got, tt.wantLocation)
				}
				return
			}
			contains(t, checkPage(t, rec), tt.wantError, `id="token"`)
			if len(rec.Result().Cookies()) != 0 {
				t.Error("a failed sign-in set a cookie")
			}
		})
	}
}

func TestLongTokenIsRefused(t *testing.T) {
	s, b := newTestServer(t, nil)
	long := strings.Repeat("t", 3000)
	b.tokens[long] = &User{Name: "carol"}
	rec := do(t, s, request{method: "POST", target: "/signin", form: url.Values{"token": {long}}})
	if rec.Code != http.StatusBadRequest || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("status %d, cookies %v", rec.Code, rec.Result().Cookies())
	}
	contains(t, rec.Body.String(), "too long to keep in a cookie")
}

func TestSessionCookie(t *testing.T) {
	tests := []struct {
		name         string
		insecureHTTP bool
		wantName     string
		wantSecure   bool
	}{
		{"https", false, "__Host-flagops-console", true},
		{"plain HTTP for tests", true, "flagops-console", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, func(o *Options) { o.InsecureHTTP = tt.insecureHTTP })
			c := signIn(t, s, "admin-token")
			if c.Name != tt.wantName || c.Secure != tt.wantSecure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie %+v: want %s, HttpOnly, Secure %v, SameSite=Strict, Path /, no Domain", c, tt.wantName, tt.wantSecure)
			}
			if strings.Contains(c.Value, "admin-token") {
				t.Error("the cookie holds the token in the clear")
			}
		})
	}
}

func TestSealer(t *testing.T) {
	k, err := newSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.seal(sealed{Token: "abc", Issued: 42})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.open(v); err != nil || got.Token != "abc" || got.Issued != 42 {
		t.Fatalf("open = %+v, %v", got, err)
	}
	other, _ := newSealer([]byte("ffffffffffffffffffffffffffffffff"))
	tampered := []byte(v)
	tampered[len(tampered)-3] ^= 1
	for name, bad := range map[string]func() (sealed, error){
		"another key": func() (sealed, error) { return other.open(v) },
		"changed":     func() (sealed, error) { return k.open(string(tampered)) },
		"not base64":  func() (sealed, error) { return k.open("!!!") },
		"too short":   func() (sealed, error) { return k.open("abc") },
	} {
		if _, err := bad(); err != errNoSession {
			t.Errorf("%s: open = %v, want errNoSession", name, err)
		}
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Error("a 5-byte key is accepted")
	}
}

func TestNoSession(t *testing.T) {
	s, _ := newTestServer(t, nil)
	valid := signIn(t, s, "admin-token")
	expired, err := s.sealer.seal(sealed{Token: "admin-token", Issued: testNow.Add(-DefaultSessionMaxAge - time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := s.sealer.seal(sealed{Token: "revoked-token", Issued: testNow.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cookie *http.Cookie
		target string
		// wantLocation is where the browser is sent; wantCleared says the cookie is removed.
		wantLocation string
		wantCleared  bool
	}{
		{"no cookie", nil, "/ns/shop/flags", "/signin?next=%2Fns%2Fshop%2Fflags", false},
		{"garbage", &http.Cookie{Name: valid.Name, Value: "garbage"}, "/", "/signin", false},
		{"older than the longest session", &http.Cookie{Name: valid.Name, Value: expired}, "/", "/signin", false},
		{"token no longer accepted", &http.Cookie{Name: valid.Name, Value: revoked}, "/ns/shop/users/alice", "/signin?expired=1&next=%2Fns%2Fshop%2Fusers%2Falice", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, s, request{method: "GET", target: tt.target, cookie: tt.cookie})
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != tt.wantLocation {
				t.Fatalf("status %d, Location %q; want 303 to %q", rec.Code, rec.Header().Get("Location"), tt.wantLocation)
			}
			cleared := false
			for _, c := range rec.Result().Cookies() {
				cleared = cleared || c.Name == valid.Name && c.MaxAge < 0
			}
			if cleared != tt.wantCleared {
				t.Errorf("cookie cleared: %v, want %v", cleared, tt.wantCleared)
			}
		})
	}
	rec := do(t, s, request{method: "GET", target: "/signin?expired=1"})
	contains(t, checkPage(t, rec), "Your session ended")
}

func TestBearerTokensAreRefused(t *testing.T) {
	bearer := map[string]string{"Authorization": "Bearer admin-token"}
	s, b := newTestServer(t, nil)
	cookie := signIn(t, s, "admin-token")
	for _, r := range []request{
		{method: "GET", target: "/ns/shop/flags", header: bearer},
		{method: "GET", target: "/ns/shop/flags", header: bearer, cookie: cookie},
		{method: "POST", target: "/ns/shop/users/dave", header: bearer, form: url.Values{"key": {"limit"}, "value.limit": {"3"}}},
		{method: "POST", target: "/signin", header: bearer},
	} {
		rec := do(t, s, r)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s with a bearer token: status %d, want 401", r.method, r.target, rec.Code)
		}
		contains(t, checkPage(t, rec), "bearer tokens are not accepted here")
	}
	if n := b.writesBy("alice"); n != 0 {
		t.Errorf("%d writes", n)
	}

	t.Run("from an authenticating proxy", func(t *testing.T) {
		s, _ := newTestServer(t, func(o *Options) { o.SignInWithAuthorizationHeader = true })
		rec := do(t, s, request{method: "POST", target: "/signin", header: bearer, form: url.Values{}})
		if rec.Code != http.StatusSeeOther || len(rec.Result().Cookies()) != 1 {
			t.Fatalf("sign-in with the proxy's header: status %d, cookies %v", rec.Code, rec.Result().Cookies())
		}
		// Elsewhere the header is ignored: without the cookie the browser signs in.
		rec = do(t, s, request{method: "GET", target: "/ns/shop/flags", header: bearer})
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/signin") {
			t.Errorf("a bearer header without a cookie: status %d, Location %q", rec.Code, rec.Header().Get("Location"))
		}
		rec = do(t, s, request{method: "POST", target: "/signin", header: map[string]string{"Authorization": "Basic eDp5"}, form: url.Values{}})
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("a basic Authorization header signs in: %d", rec.Code)
		}
	})
}

func TestCrossOriginRequestsAreRefused(t *testing.T) {
	s, b := newTestServer(t, nil)
	cookie := signIn(t, s, "admin-token")
	form := url.Values{"key": {"limit"}, "value.limit": {"30"}, "version": {""}}
	for name, hdr := range map[string]map[string]string{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site": "cross-site"},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site": "same-site"},
		"Origin of another host":    {"Origin": "https://evil.example"},
	} {
		for _, target := range []string{"/ns/shop/users/dave", "/ns/shop/flags/beta.dashboard/enabled", "/signout"} {
			rec := do(t, s, request{method: "POST", target: target, cookie: cookie, form: form, header: hdr})
			if rec.Code != http.StatusForbidden {
				t.Errorf("%s: POST %s: status %d, want 403", name, target, rec.Code)
			}
			contains(t, checkPage(t, rec), "cross-origin request refused")
		}
	}
	if n := b.writesBy("alice"); n != 0 {
		t.Errorf("%d writes after cross-origin requests", n)
	}
	rec := do(t, s, request{method: "POST", target: "/ns/shop/users/dave", cookie: cookie, form: form, header: map[string]string{"Sec-Fetch-Site": "same-origin"}})
	if rec.Code != http.StatusSeeOther || b.writesBy("alice") != 1 {
		t.Errorf("same-origin save: status %d, %d writes: %s", rec.Code, b.writesBy("alice"), rec.Body.String())
	}
}

func TestNoStateChangeOnGet(t *testing.T) {
	s, b := newTestServer(t, nil)
	cookie := signIn(t, s, "admin-token")
	for _, target := range []string{
		"/", "/?pick=1", "/ns/shop/flags", "/ns/shop/flags?q=beta", "/ns/shop/users/alice", "/ns/shop/users/alice?edit=theme",
		"/ns/shop/devices/tab-1?class=tablet", "/ns/shop/users?id=alice", "/ns/shop/flags/theme?sim=1&sim-user=alice",
	} {
		rec := do(t, s, request{method: "GET", target: target, cookie: cookie})
		if rec.Code >= 400 {
			t.Errorf("GET %s: status %d", target, rec.Code)
		}
		checkPage(t, rec)
	}
	for _, target := range []string{"/ns/shop/flags/beta.dashboard/enabled", "/ns/shop/flags/beta.dashboard/rollout", "/ns/shop/users/alice/clear", "/signout"} {
		if rec := do(t, s, request{method: "GET", target: target, cookie: cookie}); rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: status %d, want 405", target, rec.Code)
		}
	}
	if n := b.writesBy("alice"); n != 0 {
		t.Errorf("%d writes on GET", n)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rec := do(t, s, request{method: "GET", target: "/signin"})
	checkPage(t, rec)
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "Strict-Transport-Security": "max-age=31536000",
	} {
		if got := rec.Header().Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestStaticFiles(t *testing.T) {
	s, _ := newTestServer(t, nil)
	record, err := staticFS.ReadFile("static/htmx.txt")
	if err != nil {
		t.Fatal(err)
	}
	js, err := staticFS.ReadFile("static/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(js)
	if want := "sha256 " + hex.EncodeToString(sum[:]) + " htmx.min.js"; !strings.Contains(string(record), want) {
		t.Errorf("static/htmx.min.js does not match its record (make htmx refreshes both):\n%s\nwant the line %q", record, want)
	}
	for _, a := range []string{s.pages.assets.CSS, s.pages.assets.HTMX} {
		rec := do(t, s, request{method: "GET", target: a})
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: status %d, Cache-Control %q", a, rec.Code, rec.Header().Get("Cache-Control"))
		}
	}
	for _, target := range []string{"/static/", "/static/htmx.txt", "/static/nope.js"} {
		if rec := do(t, s, request{method: "GET", target: target}); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, rec.Code)
		}
	}
	if rec := do(t, s, request{method: "GET", target: "/healthz"}); rec.Code != http.StatusOK {
		t.Errorf("GET /healthz: status %d", rec.Code)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no identity", Options{SessionKey: testKey}, `identity "": want "impersonate" or "passthrough"`},
		{"passthrough with an audience", Options{Identity: IdentityPassthrough, TokenAudience: "flagops-console", SessionKey: testKey}, "passthrough sends the token to the API server"},
		{"short key", Options{Identity: IdentityImpersonate, SessionKey: []byte("k")}, "the session key has 1 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newServer(tt.opts, &fakeBackend{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
