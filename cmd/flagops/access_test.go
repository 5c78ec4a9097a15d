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

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/golang-jwt/jwt/v5"
	. "github.com/onsi/gomega"

	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

// TestSecureDefaults: the cluster modes refuse to serve the evaluator
// without keys unless --insecure-no-auth is given, and then warn at every
// start; serve --dir stays open.
func TestSecureDefaults(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-kubeconfig"))
	dir := t.TempDir()
	refused := []struct {
		name string
		args []string
	}{
		{"sidecar", []string{"sidecar", "--namespace=shop"}},
		{"evaluator", []string{"evaluator"}},
		{"evaluator of some namespaces", []string{"evaluator", "--namespaces=shop,billing"}},
		{"manager serving the evaluator", []string{"manager", "--enable-webhooks=false", "--evaluator-bind-address=:8080"}},
		{"manager on another address", []string{"manager", "--evaluator-bind-address=127.0.0.1:0"}},
	}
	for _, tc := range refused {
		t.Run(tc.name+" refuses to start without keys", func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), "no context-token keys") ||
				!strings.Contains(stderr.String(), "--context-token-keys-file") || !strings.Contains(stderr.String(), "--insecure-no-auth") {
				t.Errorf("exit code %d, stderr %q; want 2 naming --context-token-keys-file and --insecure-no-auth", code, stderr.String())
			}
		})
	}

	// What may start: --insecure-no-auth, a manager without an evaluator,
	// serve --dir.
	if _, err := parseSidecarFlags([]string{"--namespace=shop", "--insecure-no-auth"}, osSidecarEnv, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("sidecar --insecure-no-auth: %v", err)
	}
	if _, err := parseEvaluatorFlags([]string{"--insecure-no-auth"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("evaluator --insecure-no-auth: %v", err)
	}
	if _, err := parseManagerFlags([]string{"--evaluator-bind-address=:8080", "--insecure-no-auth"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("manager --insecure-no-auth: %v", err)
	}
	if _, err := parseManagerFlags(nil, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Errorf("manager without an evaluator (its default): %v", err)
	}
	if o, err := parseServeFlags([]string{"--dir=" + dir}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil || o.access.auth != nil {
		t.Errorf("serve --dir without keys: %v; want open serving", err)
	}

	// The warning, at every start of the evaluator.
	o, err := parseSidecarFlags([]string{"--namespace=shop", "--insecure-no-auth"}, osSidecarEnv, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var logs bytes.Buffer
		log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + args + "\n") }, funcr.Options{})
		syncer := controllers.NewSyncer(nil, evaluator.NewStore())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r := &evaluatorRunnable{srv: newEvaluatorHTTPServer("127.0.0.1:0", "shop", syncer.Store(), syncer, &o.access, &streamLimits{}, log),
			listen: func() (net.Listener, error) { return ln, nil }, log: log, access: &o.access}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Start(ctx) }()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the evaluator did not stop")
		}
		if !strings.Contains(logs.String(), "WITHOUT AUTHENTICATION") || !strings.Contains(logs.String(), "--insecure-no-auth") {
			t.Errorf("start logs %q; want the --insecure-no-auth warning", logs.String())
		}
	}
}

// testKey is an Ed25519 key with its key ID.
type testKey struct {
	kid  string
	priv ed25519.PrivateKey
}

func newTestKey(t *testing.T, kid string) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, priv: priv}
}

// jwksOf renders the public JWKS of keys.
func jwksOf(t *testing.T, keys ...testKey) string {
	t.Helper()
	var list []map[string]string
	for _, k := range keys {
		list = append(list, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": k.kid,
			"x": base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))})
	}
	b, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// token mints a device token of namespace ns signed by k.
func (k testKey) token(t *testing.T, ns string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"aud": "flagops:" + ns, "exp": time.Now().Add(time.Hour).Unix(), "ctx": map[string]any{"userId": "u1"},
	})
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncLog collects log lines safely from several goroutines.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *syncLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, prefix+args)
		l.mu.Unlock()
	}, funcr.Options{})
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// TestKeyRotation: the keys file is re-read while serving; a key added to
// it is accepted and a key removed from it is refused, cached tokens
// included, without a restart.
func TestKeyRotation(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(20 * time.Second)
	g.SetDefaultEventuallyPollingInterval(10 * time.Millisecond)
	a, b := newTestKey(t, "key-a"), newTestKey(t, "key-b")
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFileAtomic(t, path, jwksOf(t, a))

	d := &deviceAccess{keysFile: path, maxLifetime: time.Hour, keysPoll: 10 * time.Millisecond}
	g.Expect(d.load(true)).To(Succeed())
	var logs syncLog
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.start(ctx, logs.logger())

	store := evaluator.NewStore()
	if _, _, err := store.Apply(evaluator.UpsertFlag("shop", "f", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true})); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(store, server.Options{DefaultNamespace: "shop", Auth: d.auth}))
	defer srv.Close()
	call := func(tok string) func() int {
		return func() int {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/evaluate", strings.NewReader("{}"))
			if err != nil {
				return 0
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := srv.Client().Do(req)
			if err != nil {
				return 0
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			closeOrFail(t, resp.Body)
			return resp.StatusCode
		}
	}
	tokA, tokB := a.token(t, "shop"), b.token(t, "shop")
	g.Expect(call(tokA)()).To(Equal(http.StatusOK))
	g.Expect(call(tokB)()).To(Equal(http.StatusUnauthorized), "key-b is not in the file yet")

	writeFileAtomic(t, path, jwksOf(t, a, b))
	g.Eventually(call(tokB)).Should(Equal(http.StatusOK), "key-b added")
	g.Expect(call(tokA)()).To(Equal(http.StatusOK))

	// key-a's token is verified and cached; removing key-a must refuse it.
	writeFileAtomic(t, path, jwksOf(t, b))
	g.Eventually(call(tokA)).Should(Equal(http.StatusUnauthorized), "key-a removed")
	g.Expect(call(tokB)()).To(Equal(http.StatusOK))

	// A broken file is logged and the keys in use stay.
	writeFileAtomic(t, path, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)
	g.Eventually(logs.String).Should(ContainSubstring("Unable to reload the context-token keys"))
	g.Expect(call(tokB)()).To(Equal(http.StatusOK))
	g.Expect(logs.String()).To(And(ContainSubstring(`"kids"=["key-a" "key-b"]`), ContainSubstring(`"kids"=["key-b"]`)))
}

func TestDeviceAccessFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	dir := t.TempDir()
	k := newTestKey(t, "k1")
	keys := filepath.Join(dir, "jwks.json")
	writeFileAtomic(t, keys, jwksOf(t, k))
	bad := filepath.Join(dir, "bad.pem")
	writeFileAtomic(t, bad, "not a key")
	short := filepath.Join(dir, "short")
	writeFileAtomic(t, short, "  0123456789\n")
	secret := filepath.Join(dir, "secret")
	writeFileAtomic(t, secret, strings.Repeat("s", 32)+"\n")
	missing := filepath.Join(dir, "absent")

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "keys", args: []string{"--context-token-keys-file=" + keys}},
		{name: "keys, HS256 and settable attributes", args: []string{"--context-token-keys-file=" + keys, "--context-token-hs256-secret-file=" + secret,
			"--client-settable-attributes= appVersion ,locale", "--context-token-max-lifetime=1h", "--cors-allowed-origins= https://a.example ,https://b.example"}},
		{name: "HS256 only", args: []string{"--context-token-hs256-secret-file=" + secret}},
		{name: "keys file missing", args: []string{"--context-token-keys-file=" + missing}, wantErr: "--context-token-keys-file: open " + missing},
		{name: "keys file not keys", args: []string{"--context-token-keys-file=" + bad}, wantErr: "--context-token-keys-file: " + bad + ": neither a JWKS"},
		{name: "HS256 secret too short", args: []string{"--context-token-hs256-secret-file=" + short},
			wantErr: "--context-token-hs256-secret-file: the secret in " + short + " is 10 bytes; HS256 needs at least 32"},
		{name: "HS256 secret missing", args: []string{"--context-token-hs256-secret-file=" + missing}, wantErr: "--context-token-hs256-secret-file: open"},
		{name: "the removed HS256 flag", args: []string{"--context-token-key-file=" + secret},
			wantErr: "removed: use --context-token-keys-file with a JWKS or PEM public key, or --context-token-hs256-secret-file"},
		{name: "keys and --insecure-no-auth", args: []string{"--context-token-keys-file=" + keys, "--insecure-no-auth"}, wantErr: "--insecure-no-auth contradicts"},
		{name: "zero lifetime", args: []string{"--context-token-keys-file=" + keys, "--context-token-max-lifetime=0s"}, wantErr: "--context-token-max-lifetime: 0s is not positive"},
		{name: "well-known settable attribute", args: []string{"--context-token-keys-file=" + keys, "--client-settable-attributes=plan,userId"},
			wantErr: `--client-settable-attributes: client-settable attribute "userId"`},
		{name: "empty settable attribute", args: []string{"--context-token-keys-file=" + keys, "--client-settable-attributes=a,,b"},
			wantErr: "--client-settable-attributes: empty attribute name"},
		{name: "empty origin", args: []string{"--insecure-no-auth", "--cors-allowed-origins=https://a.example,,x"}, wantErr: "--cors-allowed-origins: empty origin"},
	}
	commands := []struct {
		name  string
		parse func(args []string) (*deviceAccess, error)
	}{
		{"manager", func(args []string) (*deviceAccess, error) {
			o, err := parseManagerFlags(args, io.Discard, io.Discard)
			if err != nil {
				return nil, err
			}
			return &o.access, nil
		}},
		{"sidecar", func(args []string) (*deviceAccess, error) {
			o, err := parseSidecarFlags(append([]string{"--namespace=x"}, args...), osSidecarEnv, io.Discard, io.Discard)
			if err != nil {
				return nil, err
			}
			return &o.access, nil
		}},
		{"serve", func(args []string) (*deviceAccess, error) {
			o, err := parseServeFlags(append([]string{"--dir=" + dir}, args...), io.Discard, io.Discard)
			if err != nil {
				return nil, err
			}
			return &o.access, nil
		}},
	}
	for _, cmd := range commands {
		for _, tc := range tests {
			t.Run(cmd.name+"/"+tc.name, func(t *testing.T) {
				d, err := cmd.parse(tc.args)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("err = %v, want %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if d.auth == nil {
					t.Fatal("no authenticator")
				}
			})
		}
	}
	o, err := parseServeFlags([]string{"--dir=" + dir, "--context-token-keys-file=" + keys, "--context-token-hs256-secret-file=" + secret,
		"--client-settable-attributes= appVersion ,locale", "--cors-allowed-origins= https://a.example ,https://b.example"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.access.auth.ClientSettable(), ","); got != "appVersion,locale" ||
		strings.Join(o.access.origins, "|") != "https://a.example|https://b.example" || o.access.auth.Keys().Len() != 1 {
		t.Errorf("settable %q, origins %q", got, o.access.origins)
	}
	// The exit code of a flag error, for every command.
	for _, args := range [][]string{{"manager"}, {"sidecar", "--namespace=x"}, {"serve", "--dir=" + dir}} {
		var stdout, stderr bytes.Buffer
		args = append(args, "--context-token-key-file="+secret)
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "--context-token-keys-file") {
			t.Errorf("%v: exit code %d, stderr %q; want 2 naming the replacement", args, code, stderr.String())
		}
	}
}

func TestGuardedEvaluatorHTTPServer(t *testing.T) {
	k := newTestKey(t, "k1")
	keys := filepath.Join(t.TempDir(), "jwks.json")
	writeFileAtomic(t, keys, jwksOf(t, k))
	access := &deviceAccess{keysFile: keys, maxLifetime: time.Hour, corsOrigins: "https://app.example"}
	if err := access.load(true); err != nil {
		t.Fatal(err)
	}
	syncer := controllers.NewSyncer(nil, evaluator.NewStore())
	srv := newEvaluatorHTTPServer("127.0.0.1:0", "default", syncer.Store(), syncer, access, &streamLimits{}, logr.Discard())
	if srv.WriteTimeout != evaluatorWriteTimeout || srv.ReadHeaderTimeout != evaluatorReadHeaderTimeout {
		t.Errorf("timeouts %v, %v; want the evaluator's", srv.WriteTimeout, srv.ReadHeaderTimeout)
	}
	call := func(path string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{}`))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		srv.Handler.ServeHTTP(rec, req)
		return rec
	}
	if rec := call("/v1/evaluate", "Origin", "https://app.example"); rec.Code != http.StatusUnauthorized ||
		rec.Header().Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Errorf("no token: status %d, Allow-Origin %q; want 401 readable by the allowed origin", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	// The empty store has no namespace: a valid token gets past authentication to the 404.
	if rec := call("/v1/evaluate", "Authorization", "Bearer "+k.token(t, "default")); rec.Code != http.StatusNotFound {
		t.Errorf("valid token: status %d, want 404 from the route: %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	rec := httptest.NewRecorder()
	srv.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the initial sync: status %d, want 503 without a token", rec.Code)
	}
}
