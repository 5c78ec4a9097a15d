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
	"io"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator/server"
)

func TestStreamLimitsFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	dir := t.TempDir()
	manager := func(args ...string) (streamLimits, error) {
		o, err := parseManagerFlags(append([]string{"--insecure-no-auth"}, args...), io.Discard, io.Discard)
		if err != nil {
			return streamLimits{}, err
		}
		return o.streams, nil
	}
	sidecar := func(args ...string) (streamLimits, error) {
		o, err := parseSidecarFlags(append([]string{"--namespace=x", "--insecure-no-auth"}, args...), osSidecarEnv, io.Discard, io.Discard)
		if err != nil {
			return streamLimits{}, err
		}
		return o.streams, nil
	}
	serve := func(args ...string) (streamLimits, error) {
		o, err := parseServeFlags(append([]string{"--dir=" + dir}, args...), io.Discard, io.Discard)
		if err != nil {
			return streamLimits{}, err
		}
		return o.streams, nil
	}
	const mi = 1 << 20
	tests := []struct {
		name        string
		parse       func(...string) (streamLimits, error)
		args        []string
		goMemLimit  int64 // 0: none
		wantMax     int
		wantTimeout time.Duration
		wantRate    float64
		wantErr     string
	}{
		{name: "manager default: 128Mi", parse: manager, wantMax: 128 * mi / int(server.MemoryPerStream), wantTimeout: 10 * time.Second},
		{name: "default from GOMEMLIMIT", parse: manager, goMemLimit: 512 * mi, wantMax: 256 * mi / int(server.MemoryPerStream), wantTimeout: 10 * time.Second},
		{name: "sidecar explicit cap", parse: sidecar, args: []string{"--max-subscribers=7"}, wantMax: 7, wantTimeout: 10 * time.Second},
		{name: "serve budget", parse: serve, args: []string{"--stream-memory-budget=4Mi", "--stream-write-timeout=2s"}, wantMax: 4 * mi / int(server.MemoryPerStream), wantTimeout: 2 * time.Second},
		{name: "budget beats GOMEMLIMIT", parse: serve, args: []string{"--stream-memory-budget=8Mi"}, goMemLimit: 512 * mi, wantMax: 8 * mi / int(server.MemoryPerStream), wantTimeout: 10 * time.Second},
		{name: "explicit cap beats the budget", parse: sidecar, args: []string{"--max-subscribers=5", "--stream-memory-budget=1Gi"}, wantMax: 5, wantTimeout: 10 * time.Second},
		{name: "tiny budget still allows one", parse: serve, args: []string{"--stream-memory-budget=1Ki"}, wantMax: 1, wantTimeout: 10 * time.Second},
		{name: "accept rate", parse: serve, args: []string{"--stream-accept-rate=250.5"}, wantMax: 128 * mi / int(server.MemoryPerStream), wantTimeout: 10 * time.Second, wantRate: 250.5},
		{name: "no accept rate", parse: sidecar, args: []string{"--stream-accept-rate=0"}, wantMax: 128 * mi / int(server.MemoryPerStream), wantTimeout: 10 * time.Second},
		{name: "negative accept rate", parse: manager, args: []string{"--stream-accept-rate=-5"}, wantErr: "--stream-accept-rate: -5 is negative; use 0 for no limit"},
		{name: "accept rate not a number", parse: manager, args: []string{"--stream-accept-rate=NaN"}, wantErr: "--stream-accept-rate: NaN is not a number of streams a second"},
		{name: "negative cap", parse: manager, args: []string{"--max-subscribers=-1"}, wantErr: "--max-subscribers: -1 is negative"},
		{name: "bad budget", parse: serve, args: []string{"--stream-memory-budget=lots"}, wantErr: `--stream-memory-budget: "lots"`},
		{name: "zero budget", parse: sidecar, args: []string{"--stream-memory-budget=0"}, wantErr: "--stream-memory-budget: 0 is not positive"},
		{name: "zero write timeout", parse: manager, args: []string{"--stream-write-timeout=0s"}, wantErr: "--stream-write-timeout: 0s is not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.goMemLimit
			if limit == 0 {
				limit = math.MaxInt64 // no limit, whatever the environment says
			}
			old := debug.SetMemoryLimit(limit)
			t.Cleanup(func() { debug.SetMemoryLimit(old) })
			got, err := tt.parse(tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var opts server.Options
			got.apply(&opts)
			wantRate := tt.wantRate
			if opts.MaxSubscribers != tt.wantMax || opts.StreamWriteTimeout != tt.wantTimeout || opts.AcceptRate != wantRate {
				t.Errorf("MaxSubscribers %d, StreamWriteTimeout %v, AcceptRate %v; want %d, %v, %v",
					opts.MaxSubscribers, opts.StreamWriteTimeout, opts.AcceptRate, tt.wantMax, tt.wantTimeout, wantRate)
			}
		})
	}
	var zero streamLimits
	if got := zero.max(); got != server.MaxSubscribersFor(server.StreamMemoryBudget()) {
		t.Errorf("unloaded limits: max %d, want the default", got)
	}
}
