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
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
)

func TestParseEvaluatorFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantNS    []string
		wantDefNS string
		wantAddr  string
		wantErr   string
	}{
		{name: "defaults: every namespace", wantDefNS: "default", wantAddr: ":8080"},
		{name: "one namespace is the default one", args: []string{"--namespaces=shop"}, wantNS: []string{"shop"}, wantDefNS: "shop", wantAddr: ":8080"},
		{name: "several namespaces", args: []string{"--namespaces= shop, billing ,shop"}, wantNS: []string{"shop", "billing"}, wantDefNS: "default", wantAddr: ":8080"},
		{name: "a default namespace among them", args: []string{"--namespaces=shop,billing", "--default-namespace=billing"}, wantNS: []string{"shop", "billing"}, wantDefNS: "billing", wantAddr: ":8080"},
		{name: "a default namespace with every namespace", args: []string{"--default-namespace=shop"}, wantDefNS: "shop", wantAddr: ":8080"},
		{name: "address", args: []string{"--evaluator-bind-address=127.0.0.1:9000"}, wantDefNS: "default", wantAddr: "127.0.0.1:9000"},
		{name: "an empty namespace", args: []string{"--namespaces=shop,,billing"}, wantErr: `--namespaces: empty namespace in "shop,,billing"`},
		{name: "a default namespace not watched", args: []string{"--namespaces=shop", "--default-namespace=billing"}, wantErr: `--default-namespace: "billing" is not one of --namespaces "shop"`},
		{name: "disabled server", args: []string{"--evaluator-bind-address=0"}, wantErr: "--evaluator-bind-address: the evaluator needs an address"},
		{name: "empty address", args: []string{"--evaluator-bind-address="}, wantErr: "--evaluator-bind-address: the evaluator needs an address"},
		{name: "a manager flag", args: []string{"--leader-elect"}, wantErr: "flag provided but not defined: -leader-elect"},
		{name: "a webhook flag", args: []string{"--enable-webhooks=false"}, wantErr: "flag provided but not defined: -enable-webhooks"},
		{name: "stray argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			o, err := parseEvaluatorFlags(append([]string{"--insecure-no-auth"}, tt.args...), io.Discard, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.wantErr) {
					t.Fatalf("err = %v (stderr %q), want it to mention %q", err, stderr.String(), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !slices.Equal(o.namespaces, tt.wantNS) || o.defaultNamespace != tt.wantDefNS || o.evaluatorAddr != tt.wantAddr {
				t.Errorf("namespaces %q, default %q, address %q; want %q, %q, %q",
					o.namespaces, o.defaultNamespace, o.evaluatorAddr, tt.wantNS, tt.wantDefNS, tt.wantAddr)
			}
			c := o.serving()
			if !slices.Equal(c.namespaces, o.namespaces) || c.defaultNamespace != o.defaultNamespace || c.evaluatorAddr != o.evaluatorAddr ||
				c.probeAddr != ":8081" || c.metricsAddr != "0" || c.pprofAddr != "0" || c.access != &o.access {
				t.Errorf("serving() = %+v does not carry the options", c)
			}
		})
	}
}

// TestBindDefaults pins where each command listens when not told: the commands that run
// next to an application or on a developer's machine (sidecar, serve) are reachable from
// that pod or machine only; the manager serves no evaluator; the evaluator, which exists to
// be reached by other pods, listens on every interface.
func TestBindDefaults(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		command string
		addr    func() (string, error)
		want    string
	}{
		{"sidecar", func() (string, error) {
			o, err := parseSidecarFlags([]string{"--namespace=shop", "--insecure-no-auth"}, osSidecarEnv, io.Discard, io.Discard)
			if err != nil {
				return "", err
			}
			return o.evaluatorAddr, nil
		}, "127.0.0.1:8080"},
		{"serve", func() (string, error) {
			o, err := parseServeFlags([]string{"--dir=" + dir}, io.Discard, io.Discard)
			if err != nil {
				return "", err
			}
			return o.bindAddr, nil
		}, "127.0.0.1:8080"},
		{"manager", func() (string, error) {
			o, err := parseManagerFlags(nil, io.Discard, io.Discard)
			if err != nil {
				return "", err
			}
			return o.evaluatorAddr, nil
		}, "0"},
		{"evaluator", func() (string, error) {
			o, err := parseEvaluatorFlags([]string{"--insecure-no-auth"}, io.Discard, io.Discard)
			if err != nil {
				return "", err
			}
			return o.evaluatorAddr, nil
		}, ":8080"},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			got, err := tt.addr()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("flagops %s binds the evaluator to %q by default, want %q", tt.command, got, tt.want)
			}
		})
	}
}

func TestRunEvaluatorExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"evaluator", "--help"}, wantCode: 0, wantStdout: "-namespaces"},
		{name: "unknown flag", args: []string{"evaluator", "--bogus"}, wantCode: 2, wantStderr: "flag provided but not defined: -bogus"},
		{name: "bad namespaces", args: []string{"evaluator", "--namespaces=,"}, wantCode: 2, wantStderr: "flagops evaluator: --namespaces: empty namespace"},
		{name: "usage lists evaluator", args: []string{"--help"}, wantCode: 0, wantStdout: "evaluator"},
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

// TestReleaseStartMemory: once synced, the heap freed by the start goes back to the OS (the
// runtime's free, unreleased heap is then small, though the start freed 64 MiB); before,
// it waits, and it returns when the context ends.
func TestReleaseStartMemory(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	releaseStartMemory(ctx, make(chan struct{})) // returns: the context ended

	startGarbage(64)
	runtime.GC() // the start's garbage is now free heap, not yet released
	synced := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		releaseStartMemory(context.Background(), synced)
	}()
	select {
	case <-done:
		t.Fatal("it returned before the sync")
	default:
	}
	close(synced)
	<-done
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	if free := s[0].Value.Uint64(); free > 16<<20 {
		t.Errorf("%d MiB of free heap not released to the OS after the sync, want at most 16 MiB", free>>20)
	}
}

// startGarbage allocates n MiB and drops them, as a start drops what it decoded.
func startGarbage(n int) {
	start := make([][]byte, n)
	for i := range start {
		start[i] = make([]byte, 1<<20)
		start[i][0] = 1
	}
	runtime.KeepAlive(start)
}
