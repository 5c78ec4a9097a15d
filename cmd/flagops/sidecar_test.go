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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

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
			// The sidecar needs keys or --insecure-no-auth (TestSecureDefaults).
			o, err := parseSidecarFlags(append([]string{"--insecure-no-auth"}, tt.args...), env, &stdout, &stderr)
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
			o, err := parseManagerFlags(append([]string{"--insecure-no-auth"}, tt.args...), io.Discard, io.Discard)
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
	srv := newEvaluatorHTTPServer("127.0.0.1:0", "default", syncer.Store(), syncer, &deviceAccess{}, &streamLimits{}, logr.Discard())
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
