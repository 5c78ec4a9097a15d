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

package certs

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &o
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // empty: valid
		self    bool
	}{
		{name: "defaults", self: true},
		{name: "external skips the rest", args: []string{"--webhook-certs=external", "--webhook-cert-validity=0s"}},
		{name: "unknown mode", args: []string{"--webhook-certs=cert-manager"}, wantErr: `--webhook-certs: "cert-manager" is neither self nor external`},
		{name: "secret name", args: []string{"--webhook-cert-secret=Bad_Name"}, wantErr: `--webhook-cert-secret: "Bad_Name" is not a valid name`},
		{name: "empty service", args: []string{"--webhook-service="}, wantErr: `--webhook-service: "" is not a valid name`},
		{name: "service with a dot", args: []string{"--webhook-service=a.b"}, wantErr: `--webhook-service: "a.b" is not a valid Service name`},
		{name: "mutating configuration", args: []string{"--mutating-webhook-configuration=-x"}, wantErr: `--mutating-webhook-configuration: "-x" is not a valid name`},
		{name: "validating configuration", args: []string{"--validating-webhook-configuration=X"}, wantErr: `--validating-webhook-configuration: "X" is not a valid name`},
		{name: "zero CA validity", args: []string{"--webhook-ca-validity=0s"}, wantErr: "--webhook-ca-validity: 0s is not a positive duration"},
		{name: "negative check", args: []string{"--webhook-cert-check-interval=-1m"}, wantErr: "--webhook-cert-check-interval: -1m0s is not a positive duration"},
		{name: "cert outlives CA", args: []string{"--webhook-ca-validity=100h", "--webhook-cert-validity=200h"}, wantErr: "--webhook-cert-validity: 200h0m0s is longer than --webhook-ca-validity (100h0m0s)"},
		{name: "renew before whole validity", args: []string{"--webhook-cert-validity=2h", "--webhook-cert-renew-before=2h"}, wantErr: "--webhook-cert-renew-before: 2h0m0s is not shorter than --webhook-cert-validity (2h0m0s)"},
		{name: "check slower than renewal window", args: []string{"--webhook-cert-validity=2h", "--webhook-cert-renew-before=1h", "--webhook-cert-check-interval=1h"}, wantErr: "--webhook-cert-check-interval: 1h0m0s is not shorter than --webhook-cert-renew-before (1h0m0s)"},
		{name: "short but consistent", args: []string{"--webhook-cert-validity=6m", "--webhook-cert-renew-before=5m", "--webhook-cert-check-interval=10s"}, self: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parse(t, tt.args...)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: got %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && o.Self() != tt.self {
				t.Fatalf("Self() = %v, want %v", o.Self(), tt.self)
			}
		})
	}
}

func TestSetupRefusesBadOptions(t *testing.T) {
	o := parse(t, "--webhook-cert-validity=1h", "--webhook-cert-renew-before=2h")
	if err := Setup(nil, *o, "ns", t.TempDir(), make(chan struct{})); err == nil || !strings.Contains(err.Error(), "--webhook-cert-renew-before") {
		t.Fatalf("Setup with bad options: %v", err)
	}
	o = parse(t, "--webhook-certs=external")
	if err := Setup(nil, *o, "ns", t.TempDir(), make(chan struct{})); err == nil || !strings.Contains(err.Error(), "external") {
		t.Fatalf("Setup with external certificates: %v", err)
	}
}

func TestNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", " flagops-system\n")
	ns, err := Namespace()
	if err != nil || ns != "flagops-system" {
		t.Fatalf("Namespace() = %q, %v; want flagops-system", ns, err)
	}
	t.Setenv("POD_NAMESPACE", "")
	// Outside a pod there is no service account namespace file.
	if _, err := Namespace(); err == nil || !strings.Contains(err.Error(), "POD_NAMESPACE") {
		t.Fatalf("Namespace() outside a pod: %v; want an error naming POD_NAMESPACE", err)
	}
}

// fakeServer records when it starts.
type fakeServer struct {
	webhook.Server
	started chan struct{}
}

func (s *fakeServer) Start(ctx context.Context) error {
	close(s.started)
	<-ctx.Done()
	return nil
}

func TestWaitFor(t *testing.T) {
	t.Run("starts once ready", func(t *testing.T) {
		inner := &fakeServer{started: make(chan struct{})}
		ready := make(chan struct{})
		srv := WaitFor(inner, ready)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Start(ctx) }()
		select {
		case <-inner.started:
			t.Fatal("the server started before the certificate was ready")
		case <-time.After(50 * time.Millisecond):
		}
		close(ready)
		<-inner.started
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Start: %v", err)
		}
	})
	t.Run("stops while waiting", func(t *testing.T) {
		inner := &fakeServer{started: make(chan struct{})}
		srv := WaitFor(inner, make(chan struct{}))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := srv.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		select {
		case <-inner.started:
			t.Fatal("the server started although the certificate never was ready")
		default:
		}
	})
}
