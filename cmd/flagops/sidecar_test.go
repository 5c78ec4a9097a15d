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
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/golang-jwt/jwt/v5"

	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
)

func TestParseSidecarFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		saFile    string // contents of the service-account namespace file; empty: missing
		wantNS    string
		wantAddr  string
		wantErr   string
		wantUsage bool
	}{
		{name: "flag", args: []string{"--namespace=shop"}, env: map[string]string{"POD_NAMESPACE": "other"}, saFile: "sa", wantNS: "shop", wantAddr: "127.0.0.1:8080"},
		{name: "POD_NAMESPACE", env: map[string]string{"POD_NAMESPACE": "billing"}, saFile: "sa", wantNS: "billing", wantAddr: "127.0.0.1:8080"},
		{name: "service account file", saFile: "payments\n", wantNS: "payments", wantAddr: "127.0.0.1:8080"},
		{name: "blank POD_NAMESPACE falls back to the file", env: map[string]string{"POD_NAMESPACE": " "}, saFile: "payments", wantNS: "payments", wantAddr: "127.0.0.1:8080"},
		{name: "localhost binding", args: []string{"--namespace=shop", "--evaluator-bind-address=127.0.0.1:9090"}, wantNS: "shop", wantAddr: "127.0.0.1:9090"},
		{name: "no namespace anywhere", wantErr: "no namespace: set --namespace"},
		{name: "disabled server", args: []string{"--namespace=shop", "--evaluator-bind-address=0"}, wantErr: "--evaluator-bind-address"},
		{name: "stray argument", args: []string{"--namespace=shop", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"--leader-elect"}, wantErr: "flag provided but not defined: -leader-elect"},
		{name: "help", args: []string{"--help"}, wantErr: "help requested", wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sidecarEnv{
				getenv: func(k string) string { return tt.env[k] },
				readFile: func(p string) ([]byte, error) {
					if p != serviceAccountNamespaceFile || tt.saFile == "" {
						return nil, fs.ErrNotExist
					}
					return []byte(tt.saFile), nil
				},
			}
			var stdout, stderr bytes.Buffer
			o, err := parseSidecarFlags(tt.args, env, &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.wantErr) {
					t.Fatalf("err = %v (stderr %q), want it to mention %q", err, stderr.String(), tt.wantErr)
				}
				if tt.wantUsage && !strings.Contains(stdout.String(), "-evaluator-bind-address") {
					t.Errorf("stdout = %q, want the usage", stdout.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if o.namespace != tt.wantNS || o.evaluatorAddr != tt.wantAddr {
				t.Errorf("namespace, address = %q, %q; want %q, %q", o.namespace, o.evaluatorAddr, tt.wantNS, tt.wantAddr)
			}
		})
	}
}

func TestRunSidecarExitCodes(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"sidecar", "--help"}, wantCode: 0, wantStdout: "-namespace"},
		{name: "unknown flag", args: []string{"sidecar", "--bogus"}, wantCode: 2, wantStderr: "flag provided but not defined: -bogus"},
		{name: "disabled server", args: []string{"sidecar", "--namespace=x", "--evaluator-bind-address=0"}, wantCode: 2, wantStderr: "flagops sidecar: --evaluator-bind-address"},
		{name: "usage lists sidecar", args: []string{"--help"}, wantCode: 0, wantStdout: "sidecar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout.String(), stderr.String(), tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestParseManagerEvaluatorFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantAddr string
		wantNS   string
		wantErr  string
	}{
		{name: "defaults: no evaluator", wantAddr: "0", wantNS: "default"},
		{name: "set", args: []string{"--evaluator-bind-address=127.0.0.1:9000", "--default-namespace=shop"}, wantAddr: "127.0.0.1:9000", wantNS: "shop"},
		{name: "disabled", args: []string{"--evaluator-bind-address=0"}, wantAddr: "0", wantNS: "default"},
		{name: "empty address", args: []string{"--evaluator-bind-address="}, wantErr: "--evaluator-bind-address: empty address"},
		{name: "empty namespace", args: []string{"--default-namespace= "}, wantErr: "--default-namespace: empty namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseManagerFlags(tt.args, io.Discard, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if o.evaluatorAddr != tt.wantAddr || o.defaultNamespace != tt.wantNS {
				t.Errorf("got %q, %q; want %q, %q", o.evaluatorAddr, o.defaultNamespace, tt.wantAddr, tt.wantNS)
			}
		})
	}
}

func TestWithReadyz(t *testing.T) {
	var ready atomic.Bool
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := withReadyz(inner, ready.Load)
	get := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before sync = %d, want 503", got)
	}
	ready.Store(true)
	if got := get("/readyz"); got != http.StatusOK {
		t.Errorf("/readyz after sync = %d, want 200", got)
	}
	if got := get("/v1/evaluate"); got != http.StatusTeapot {
		t.Errorf("other routes = %d, want the wrapped handler's 418", got)
	}
}

func TestEvaluatorServer(t *testing.T) {
	syncer := controllers.NewSyncer(nil, evaluator.NewStore())
	srv := newEvaluatorHTTPServer("127.0.0.1:0", "default", syncer.Store(), syncer, &deviceAccess{}, logr.Discard())
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 30*time.Second ||
		srv.WriteTimeout != 30*time.Second || srv.IdleTimeout != 120*time.Second {
		t.Errorf("timeouts = %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &evaluatorRunnable{srv: srv, listen: func() (net.Listener, error) { return ln, nil }, log: logr.Discard()}
	if r.NeedLeaderElection() {
		t.Error("the evaluator server must run on every replica")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the initial sync = %d, want 503", resp.StatusCode)
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v after the context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not shut down")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("the server still answers after shutdown")
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	writeFileAtomic(t, p, content)
	return p
}

func TestContextTokenKeyFileExitCodes(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	missing := filepath.Join(t.TempDir(), "absent")
	empty := writeTemp(t, "empty", " \n\t\n")
	dir := t.TempDir()
	for _, cmd := range [][]string{{"manager"}, {"sidecar", "--namespace=x"}, {"serve", "--dir=" + dir}} {
		for _, tt := range []struct{ file, want string }{
			{missing, "--context-token-key-file: open " + missing},
			{empty, "is empty; it must hold the HS256 secret"},
		} {
			var stdout, stderr bytes.Buffer
			args := append(append([]string{}, cmd...), "--context-token-key-file="+tt.file)
			if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("%v: exit code %d, stderr %q; want 2 and %q", args, code, stderr.String(), tt.want)
			}
		}
	}
}

func TestDeviceAccessFlags(t *testing.T) {
	key := writeTemp(t, "key", "  s3cret-key\n")
	o, err := parseSidecarFlags([]string{"--namespace=x", "--context-token-key-file=" + key,
		"--cors-allowed-origins= https://a.example ,https://b.example"}, osSidecarEnv, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	if string(o.access.tokenKey) != "s3cret-key" || strings.Join(o.access.origins, "|") != "https://a.example|https://b.example" {
		t.Errorf("sidecar: key %q, origins %q", o.access.tokenKey, o.access.origins)
	}
	m, err := parseManagerFlags([]string{"--context-token-key-file=" + key, "--cors-allowed-origins=*"}, io.Discard, io.Discard)
	if err != nil || string(m.access.tokenKey) != "s3cret-key" || len(m.access.origins) != 1 || m.access.origins[0] != "*" {
		t.Errorf("manager: %v, key %q, origins %q", err, m.access.tokenKey, m.access.origins)
	}
	s, err := parseServeFlags([]string{"--dir=" + t.TempDir(), "--context-token-key-file=" + key}, io.Discard, io.Discard)
	if err != nil || string(s.access.tokenKey) != "s3cret-key" || s.access.origins != nil {
		t.Errorf("serve: %v, key %q, origins %q", err, s.access.tokenKey, s.access.origins)
	}
	if _, err := parseManagerFlags([]string{"--cors-allowed-origins=https://a.example,,x"}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--cors-allowed-origins: empty origin") {
		t.Errorf("empty origin: err = %v", err)
	}
	open, err := parseManagerFlags(nil, io.Discard, io.Discard)
	if err != nil || open.access.tokenKey != nil || open.access.origins != nil {
		t.Errorf("defaults: %v, key %q, origins %q; want open serving without CORS", err, open.access.tokenKey, open.access.origins)
	}
}

func TestGuardedEvaluatorHTTPServer(t *testing.T) {
	key := []byte("guarded-key")
	syncer := controllers.NewSyncer(nil, evaluator.NewStore())
	srv := newEvaluatorHTTPServer("127.0.0.1:0", "default", syncer.Store(), syncer,
		&deviceAccess{tokenKey: key, origins: []string{"https://app.example"}}, logr.Discard())
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
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"userId": "u1"}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	// The empty store has no namespace: a valid token gets past authentication to the 404.
	if rec := call("/v1/evaluate", "Authorization", "Bearer "+tok); rec.Code != http.StatusNotFound {
		t.Errorf("valid token: status %d, want 404 from the route: %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	rec := httptest.NewRecorder()
	srv.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the initial sync: status %d, want 503 without a token", rec.Code)
	}
}

func TestMaxSubscribersFlag(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	dir := t.TempDir()
	tests := []struct {
		name    string
		parse   func(extra ...string) (deviceAccess, error)
		args    []string
		want    int
		wantErr string
	}{
		{name: "manager default", parse: func(extra ...string) (deviceAccess, error) {
			o, err := parseManagerFlags(extra, io.Discard, io.Discard)
			if err != nil {
				return deviceAccess{}, err
			}
			return o.access, nil
		}, want: defaultMaxSubscribers},
		{name: "sidecar set", parse: func(extra ...string) (deviceAccess, error) {
			o, err := parseSidecarFlags(append([]string{"--namespace=x"}, extra...), osSidecarEnv, io.Discard, io.Discard)
			if err != nil {
				return deviceAccess{}, err
			}
			return o.access, nil
		}, args: []string{"--max-subscribers=7"}, want: 7},
		{name: "serve no cap", parse: func(extra ...string) (deviceAccess, error) {
			o, err := parseServeFlags(append([]string{"--dir=" + dir}, extra...), io.Discard, io.Discard)
			if err != nil {
				return deviceAccess{}, err
			}
			return o.access, nil
		}, args: []string{"--max-subscribers=0"}, want: 0},
		{name: "negative", parse: func(extra ...string) (deviceAccess, error) {
			o, err := parseManagerFlags(extra, io.Discard, io.Discard)
			if err != nil {
				return deviceAccess{}, err
			}
			return o.access, nil
		}, args: []string{"--max-subscribers=-1"}, wantErr: "--max-subscribers: -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.maxSubscribers != tt.want {
				t.Errorf("maxSubscribers = %d (err %v), want %d", got.maxSubscribers, err, tt.want)
			}
		})
	}
}
