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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServeFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.yaml")
	writeFileAtomic(t, file, "")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"serve", "--help"}, wantCode: 0, wantStdout: "-evaluator-bind-address"},
		{name: "no dir", args: []string{"serve"}, wantCode: 2, wantStderr: "--dir is required"},
		{name: "missing dir", args: []string{"serve", "--dir", filepath.Join(dir, "nope")}, wantCode: 2, wantStderr: "--dir: stat"},
		{name: "dir is a file", args: []string{"serve", "--dir", file}, wantCode: 2, wantStderr: "is not a directory"},
		{name: "stray argument", args: []string{"serve", "--dir", dir, "extra"}, wantCode: 2, wantStderr: `unexpected argument "extra"`},
		{name: "bad address", args: []string{"serve", "--dir", dir, "--evaluator-bind-address", "256.0.0.1:bad"}, wantCode: 2, wantStderr: "--evaluator-bind-address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q", stdout.String(), stderr.String(), tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const flagYAML = `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: billing.enabled
  namespace: shop
spec:
  type: Boolean
  enabled: %s
`

// sseEvents reads server-sent events from body and sends "event-name data" strings.
func sseEvents(body *bufio.Reader, out chan<- string) {
	var name string
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			close(out)
			return
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			out <- name + " " + strings.TrimPrefix(line, "data: ")
		}
	}
}

func next(t *testing.T, events <-chan string, what string) string {
	t.Helper()
	select {
	case e, ok := <-events:
		if !ok {
			t.Fatalf("the stream ended while waiting for %s", what)
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatalf("no event while waiting for %s", what)
	}
	return ""
}

func TestServeDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		writeFileAtomic(t, filepath.Join(dir, name), content)
	}
	write("flags.yaml", strings.Replace(flagYAML, "%s", "false", 1))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, &serveOptions{dir: dir}, ln, slog.New(slog.NewTextHandler(logs, nil)))
	}()
	base := "http://" + ln.Addr().String()

	// The unprefixed routes serve the one namespace found in the files.
	resp, err := http.Get(base + "/v1/stream?userId=u1")
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream status %d", resp.StatusCode)
	}
	events := make(chan string, 16)
	go sseEvents(bufio.NewReader(resp.Body), events)
	if e := next(t, events, "the snapshot"); !strings.HasPrefix(e, "snapshot ") || !strings.Contains(e, `"billing.enabled"`) {
		t.Fatalf("first event = %q, want a snapshot with billing.enabled", e)
	}

	// Editing the file reaches the open stream.
	write("flags.yaml", strings.Replace(flagYAML, "%s", "true", 1))
	e := next(t, events, "the change")
	if !strings.HasPrefix(e, "device.feature-flags.changed ") {
		t.Fatalf("event = %q, want device.feature-flags.changed", e)
	}
	var changed struct {
		Changed map[string]struct {
			Value any `json:"value"`
		} `json:"changed"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(e, "device.feature-flags.changed ")), &changed); err != nil {
		t.Fatal(err)
	}
	if changed.Changed["billing.enabled"].Value != true {
		t.Fatalf("changed = %s, want billing.enabled true", e)
	}

	// A broken file keeps the last good state, and its name is logged.
	write("broken.yaml", strings.Replace(flagYAML, "billing.enabled", "Bad_Name", 1))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "broken.yaml") {
		if time.Now().After(deadline) {
			t.Fatalf("the broken file was not logged; logs:\n%s", logs.String())
		}
		select {
		case <-events:
			t.Fatal("a broken file changed what is served")
		case <-time.After(20 * time.Millisecond):
		}
	}
	r, err := http.Post(base+"/v1/evaluate", "application/json", strings.NewReader(`{"context":{"userId":"u1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer closeOrFail(t, r.Body)
	var got struct {
		Flags map[string]struct {
			Value any `json:"value"`
		} `json:"flags"`
	}
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Flags["billing.enabled"].Value != true {
		t.Errorf("after a broken file, billing.enabled = %v, want the last good value true", got.Flags["billing.enabled"].Value)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// writeFileAtomic writes path through a temporary file in the same directory (a dot file,
// which serve --dir ignores) renamed over it, so that no reader sees it half written, as
// Kubernetes updates a mounted Secret.
func writeFileAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmp.WriteString(content)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		t.Fatal(err)
	}
}

// TestServeReadyz checks serve's probes on its listener: /healthz answers 200 while it
// runs, and /readyz 200 only once a state of the directory was loaded with no problem.
func TestServeReadyz(t *testing.T) {
	good := strings.Replace(flagYAML, "%s", "true", 1)
	broken := strings.Replace(flagYAML, "billing.enabled", "Bad_Name", 1)
	tests := []struct {
		name      string
		initial   string // flags.yaml at start
		wantReady int    // /readyz at start
	}{
		{name: "a valid directory is ready at once", initial: good, wantReady: http.StatusOK},
		{name: "an empty file is a clean load", initial: "", wantReady: http.StatusOK},
		{name: "a broken directory is not ready until it is fixed", initial: broken, wantReady: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFileAtomic(t, filepath.Join(dir, "flags.yaml"), tt.initial)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- serve(ctx, &serveOptions{dir: dir}, ln, slog.New(slog.DiscardHandler))
			}()
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("serve returned %v", err)
					}
				case <-time.After(10 * time.Second):
					t.Error("serve did not stop")
				}
			})
			status := func(path string) int {
				resp, err := http.Get("http://" + ln.Addr().String() + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				_ = resp.Body.Close()
				return resp.StatusCode
			}
			if got := status("/healthz"); got != http.StatusOK {
				t.Errorf("/healthz = %d, want 200", got)
			}
			if got := status("/readyz"); got != tt.wantReady {
				t.Errorf("/readyz at start = %d, want %d", got, tt.wantReady)
			}

			// After a valid save, it is (or stays) ready and serves the flag.
			writeFileAtomic(t, filepath.Join(dir, "flags.yaml"), good)
			deadline := time.Now().Add(15 * time.Second)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			served := func() bool {
				resp, err := http.Post("http://"+ln.Addr().String()+"/namespaces/shop/v1/evaluate", "application/json", strings.NewReader(`{"context":{}}`))
				if err != nil {
					t.Fatal(err)
				}
				defer closeOrFail(t, resp.Body)
				var got struct {
					Flags map[string]struct {
						Value any `json:"value"`
					} `json:"flags"`
				}
				return json.NewDecoder(resp.Body).Decode(&got) == nil && got.Flags["billing.enabled"].Value == true
			}
			for status("/readyz") != http.StatusOK || !served() {
				if time.Now().After(deadline) {
					t.Fatal("not ready 15 s after a valid save")
				}
				<-tick.C
			}
			if got := status("/healthz"); got != http.StatusOK {
				t.Errorf("/healthz once ready = %d, want 200", got)
			}
		})
	}
}
