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
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagops/flagops/internal/audit"
)

func TestRun(t *testing.T) {
	shortKey := filepath.Join(t.TempDir(), "stamp-key")
	if err := os.WriteFile(shortKey, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: "Commands:"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: "manager"},
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "flagops dev"},
		{name: "unknown command", args: []string{"launch"}, wantCode: 2, wantStderr: `unknown command "launch"`},
		{name: "manager help", args: []string{"manager", "--help"}, wantCode: 0, wantStdout: "-watch-namespaces"},
		{name: "manager unknown flag", args: []string{"manager", "--bogus"}, wantCode: 2, wantStderr: "flag provided but not defined: -bogus"},
		{name: "manager stray argument", args: []string{"manager", "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "manager bad audit sink", args: []string{"manager", "--insecure-no-auth", "--audit-sink=ftp://audit.example"}, wantCode: 2, wantStderr: `--audit-sink "ftp://audit.example"`},
		{name: "manager help lists CloudEvents flags", args: []string{"manager", "--help"}, wantCode: 0, wantStdout: "-audit-cloudevents-batch"},
		{name: "manager empty event source", args: []string{"manager", "--insecure-no-auth", "--audit-event-source="}, wantCode: 2, wantStderr: "--audit-event-source: empty source"},
		{name: "manager event source with a query", args: []string{"manager", "--insecure-no-auth", "--audit-event-source=flagops.dev/x?c=1"}, wantCode: 2, wantStderr: `--audit-event-source "flagops.dev/x?c=1": has a query`},
		{name: "manager empty namespace", args: []string{"manager", "--insecure-no-auth", "--watch-namespaces=a,,b"}, wantCode: 2, wantStderr: "--watch-namespaces: empty namespace"},
		{name: "manager help lists webhook flags", args: []string{"manager", "--help"}, wantCode: 0, wantStdout: "-webhook-cert-dir"},
		{name: "manager bad webhook port", args: []string{"manager", "--webhook-port=70000"}, wantCode: 2, wantStderr: "--webhook-port: 70000 is not a port number"},
		{name: "manager zero webhook port", args: []string{"manager", "--webhook-port=0"}, wantCode: 2, wantStderr: "--webhook-port: 0 is not a port number"},
		{name: "manager help lists certificate flags", args: []string{"manager", "--help"}, wantCode: 0, wantStdout: "-webhook-cert-renew-before"},
		{name: "manager bad certificate mode", args: []string{"manager", "--webhook-certs=manual"}, wantCode: 2, wantStderr: `--webhook-certs: "manual" is neither self nor external`},
		{name: "manager renewal longer than validity", args: []string{"manager", "--webhook-cert-validity=1h", "--webhook-cert-renew-before=2h"}, wantCode: 2, wantStderr: "--webhook-cert-renew-before: 2h0m0s is not shorter than --webhook-cert-validity"},
		{name: "manager webhooks without a stamp key", args: []string{"manager"}, wantCode: 2, wantStderr: "--audit-stamp-key-file is required when the webhooks are enabled"},
		{name: "manager missing stamp key file", args: []string{"manager", "--audit-stamp-key-file=/nonexistent/key"}, wantCode: 2, wantStderr: "failed to read the stamp key file"},
		{name: "console help", args: []string{"console", "--help"}, wantCode: 0, wantStdout: "-token-audience"},
		{name: "console without TLS", args: []string{"console"}, wantCode: 2, wantStderr: "--tls-cert-file and --tls-key-file are required"},
		{name: "console plain HTTP off loopback", args: []string{"console", "--insecure-http", "--listen=0.0.0.0:8444"}, wantCode: 2, wantStderr: `--insecure-http: --listen "0.0.0.0:8444" is not a loopback address`},
		{name: "console plain HTTP and TLS", args: []string{"console", "--insecure-http", "--tls-cert-file=c", "--tls-key-file=k"}, wantCode: 2, wantStderr: "--insecure-http and --tls-cert-file/--tls-key-file are exclusive"},
		{name: "console bad identity", args: []string{"console", "--insecure-http", "--identity=sudo"}, wantCode: 2, wantStderr: `--identity "sudo": want impersonate or passthrough`},
		{name: "console passthrough with an audience", args: []string{"console", "--insecure-http", "--identity=passthrough", "--token-audience=flagops-console"}, wantCode: 2, wantStderr: "--token-audience \"flagops-console\": --identity=passthrough"},
		{name: "console review TTL", args: []string{"console", "--insecure-http", "--token-review-ttl=1h"}, wantCode: 2, wantStderr: "--token-review-ttl 1h0m0s: want 1s to 5m"},
		{name: "console bad listen", args: []string{"console", "--insecure-http", "--listen=8444"}, wantCode: 2, wantStderr: `--listen "8444": want HOST:PORT`},
		{name: "console missing session key", args: []string{"console", "--insecure-http", "--session-key-file=/nonexistent/key"}, wantCode: 2, wantStderr: "--session-key-file: open /nonexistent/key"},
		{name: "console short session key", args: []string{"console", "--insecure-http", "--session-key-file=" + shortKey}, wantCode: 2, wantStderr: "want 32 random bytes, base64-encoded"},
		{name: "manager short stamp key", args: []string{"manager", "--audit-stamp-key-file=" + shortKey}, wantCode: 2, wantStderr: "is 9 bytes, need at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// failingWriter fails every write, as stdout does when it is a closed pipe or a full disk.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestRunOutputFails(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "version", args: []string{"version"}},
		{name: "help", args: []string{"help"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tt.args, failingWriter{}, &stderr); code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			if want := "flagops: failed to write the output: no space left on device"; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), want)
			}
		})
	}
}

func TestNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{name: "empty means all", in: "", want: nil},
		{name: "blank means all", in: "  ", want: nil},
		{name: "one", in: "shop", want: []string{"shop"}},
		{name: "several with spaces", in: "shop, billing", want: []string{"shop", "billing"}},
		{name: "trailing comma", in: "shop,", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := (&managerOptions{watchNamespaces: tt.in}).namespaces()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d namespaces, want %d", len(got), len(tt.want))
			}
			for _, ns := range tt.want {
				if _, ok := got[ns]; !ok {
					t.Errorf("namespace %q missing from %v", ns, got)
				}
			}
		})
	}
}

func TestAuditEventFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantSource string
		wantBatch  bool
	}{
		{name: "defaults", wantSource: audit.DefaultEventSource},
		{name: "set", args: []string{"--audit-event-source=https://flagops.example.com/prod-eu", "--audit-cloudevents-batch"},
			wantSource: "https://flagops.example.com/prod-eu", wantBatch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseManagerFlags(append([]string{"--insecure-no-auth"}, tt.args...), io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.auditEventSource != tt.wantSource || o.auditEventBatch != tt.wantBatch {
				t.Errorf("source %q, batch %v; want %q, %v", o.auditEventSource, o.auditEventBatch, tt.wantSource, tt.wantBatch)
			}
		})
	}
}

// The manager's profiling endpoints are off unless asked for (hack/scale asks, to profile
// the leader's memory).
func TestManagerPprofFlag(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "0"},
		{[]string{"--pprof-bind-address=127.0.0.1:6060"}, "127.0.0.1:6060"},
	}
	for _, tt := range tests {
		o, err := parseManagerFlags(append([]string{"--insecure-no-auth"}, tt.args...), io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.pprofAddr != tt.want {
			t.Errorf("args %q: --pprof-bind-address %q, want %q", tt.args, o.pprofAddr, tt.want)
		}
	}
}

// closeOrFail closes c and fails the test, which goes on, if that fails. For defer and
// t.Cleanup, in place of a bare Close whose error nobody would see.
func closeOrFail(t testing.TB, c io.Closer) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}
