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
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects the output of the demo's processes, which exec copies from two
// goroutines at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDemo runs `make demo`'s program end to end: control plane, webhooks, the manager
// and evaluator processes and the samples, then checks the values the evaluator serves.
func TestDemo(t *testing.T) {
	var logs syncBuffer
	// Ports 0: the demo picks free ports just before each process starts.
	o := options{root: filepath.Join("..", ".."), namespace: "default", out: &bytes.Buffer{}, logs: &logs}
	d, err := start(context.Background(), o)
	if err != nil {
		t.Fatalf("start: %v\noutput:\n%s", err, logs.String())
	}
	defer d.stop()

	base := "http://127.0.0.1:" + strconv.Itoa(d.evaluatorPort)
	evaluate := func(body string) map[string]struct {
		Value  any    `json:"value"`
		Source string `json:"source"`
	} {
		t.Helper()
		resp, err := http.Post(base+"/v1/evaluate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer closeOrFail(t, resp.Body)
		var got struct {
			Flags map[string]struct {
				Value  any    `json:"value"`
				Source string `json:"source"`
			} `json:"flags"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got.Flags
	}
	// The evaluator follows the cluster through its own watch: wait (boundedly) until it
	// serves the user override, one of the last samples applied.
	pilotCtx := `{"context":{"userId":"user-42","role":"user"}}`
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); <-tick.C {
		if evaluate(pilotCtx)["beta.new_dashboard"].Source == "user-override:default/pilot-user-42" {
			break
		}
	}
	staff := evaluate(`{"context":{"userId":"staff-ada","role":"user"}}`)
	if staff["billing.enabled"].Value != true || staff["billing.enabled"].Source != "allow-list:user" {
		t.Errorf("billing.enabled for staff-ada = %+v, want true from the allow-list", staff["billing.enabled"])
	}
	pilot := evaluate(pilotCtx)
	if pilot["beta.new_dashboard"].Source != "user-override:default/pilot-user-42" {
		t.Errorf("beta.new_dashboard for user-42 = %+v, want the sample user override", pilot["beta.new_dashboard"])
	}
	// The samples were applied through the webhooks: their audit records name the demo
	// user, verified by the stamp.
	var verified, unverified []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); <-tick.C {
		verified, unverified = auditActors(t, filepath.Join(d.workDir, "audit.ndjson"))
		if len(verified)+len(unverified) > 0 {
			break
		}
	}
	if len(verified) == 0 || len(unverified) > 0 {
		t.Errorf("audit actors: verified %q, unverified %q; want every sample verified", verified, unverified)
	}
	if !strings.Contains(d.instructions(o), "curl -N '"+base+"/v1/stream") {
		t.Errorf("the instructions do not show the stream command:\n%s", d.instructions(o))
	}

	d.stop()
	for _, p := range []*process{d.manager, d.evaluator} {
		select {
		case <-p.exited:
		default:
			t.Errorf("the %s is still running after stop", p.name)
		}
	}
}

// auditActors reads the audit file and returns the actors of its create records, verified
// and not.
func auditActors(t *testing.T, path string) (verified, unverified []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	// The manager may be writing a line as it is read: leave out the last one until its
	// line feed is there.
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[:len(lines)-1] {
		if line == "" {
			continue
		}
		var rec struct {
			Action string `json:"action"`
			Actor  struct {
				Username string `json:"username"`
				Verified bool   `json:"verified"`
			} `json:"actor"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if !strings.HasSuffix(rec.Action, ".created") {
			continue
		}
		if rec.Actor.Verified {
			verified = append(verified, rec.Actor.Username)
		} else {
			unverified = append(unverified, rec.Actor.Username)
		}
	}
	return verified, unverified
}

// TestPort checks that a port given is used as it is, and that a free port is picked below
// the kernel's range for sockets that name no port.
func TestPort(t *testing.T) {
	if p, err := port(8123); err != nil || p != 8123 {
		t.Errorf("port(8123) = %d, %v; want 8123", p, err)
	}
	for range 20 {
		p, err := port(0)
		if err != nil {
			t.Fatal(err)
		}
		if p < freePortMin || p >= freePortMin+freePortCount || p >= 32768 {
			t.Errorf("port(0) = %d, want a port from %d to %d", p, freePortMin, freePortMin+freePortCount-1)
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
