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

// Package ofrepweb tests change notification end to end with a client flagops did not write:
// the OpenFeature web SDK and its OFREP web provider, run by Node from harness.mjs with the
// eventsource package as the global EventSource, against the real `flagops serve --dir`
// binary. `make test` installs the npm packages (package-lock.json) on first use.
package ofrepweb

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flagops/flagops/test/servetest"
)

const (
	namespace = "shop"
	flagKey   = "checkout.layout"
	userID    = "user-7"
	// changeBound is the generous bound on a change reaching the provider. The delays
	// measured are logged; they are far below it on an idle machine.
	changeBound = 20 * time.Second
)

func flagManifest(value string) string {
	return `apiVersion: flagops.dev/v1alpha1
kind: FeatureFlag
metadata:
  name: ` + flagKey + `
  namespace: ` + namespace + `
spec:
  type: String
  enabled: true
  value: ` + value + `
  offValue: classic
`
}

func overrideManifest(value string) string {
	return `apiVersion: flagops.dev/v1alpha1
kind: UserFlagOverride
metadata:
  name: ` + userID + `-layout
  namespace: ` + namespace + `
spec:
  userId: ` + userID + `
  reason: The web provider test.
  flags:
  - key: ` + flagKey + `
    value: ` + value + `
`
}

// event is one line of harness.mjs's output.
type event struct {
	Type         string   `json:"type"`
	URL          string   `json:"url"`
	Message      string   `json:"message"`
	FlagsChanged []string `json:"flagsChanged"`
	EventStreams []struct {
		Type     string `json:"type"`
		Endpoint struct {
			RequestURI string `json:"requestUri"`
		} `json:"endpoint"`
	} `json:"eventStreams"`
	Values map[string]json.RawMessage `json:"values"`
	at     time.Time
}

// value returns the evaluated value of the flag in a ready or changed event.
func (e event) value() string {
	var d struct {
		Value any `json:"value"`
	}
	_ = json.Unmarshal(e.Values[flagKey], &d)
	return fmt.Sprint(d.Value)
}

// harness is a running harness.mjs.
type harness struct {
	events chan event
	stderr *servetest.LockedBuffer
	seen   []string
	// advertised are the event stream URIs of the bulk responses so far, resolved
	// against the base URL; streams are the URLs of the EventSources opened so far.
	advertised, streams []string
	base                *url.URL
}

func startHarness(t *testing.T, cfg map[string]any) *harness {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the OFREP web provider test: %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@openfeature", "ofrep-web-provider")); err != nil {
		t.Fatalf("the harness's npm packages are missing; run `make test` or `npm ci` in test/ofrepweb: %v", err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "harness.mjs", string(js))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	base, err := url.Parse(cfg["baseUrl"].(string))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{events: make(chan event, 64), stderr: &servetest.LockedBuffer{}, base: base}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = event{Type: "unparsed", Message: sc.Text()}
			}
			ev.at = time.Now()
			h.events <- ev
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("harness events: %s\nharness stderr:\n%s", strings.Join(h.seen, "\n"), h.stderr.String())
		}
	})
	return h
}

// waitFor returns the first event, from now on, that satisfies ok.
func (h *harness) waitFor(t *testing.T, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.After(changeBound)
	for {
		select {
		case ev, open := <-h.events:
			if !open {
				t.Fatalf("waiting for %s: the harness exited", what)
			}
			h.seen = append(h.seen, fmt.Sprintf("%s %s %s %v %s", ev.Type, ev.URL, ev.Message, ev.FlagsChanged, ev.value()))
			switch ev.Type {
			case "eventsource":
				h.streams = append(h.streams, ev.URL)
			case "advertised":
				for _, es := range ev.EventStreams {
					ref, err := url.Parse(es.Endpoint.RequestURI)
					if err != nil || es.Type != "sse" {
						t.Fatalf("advertised event stream %+v: type %q, %v", es, es.Type, err)
					}
					h.advertised = append(h.advertised, h.base.ResolveReference(ref).String())
				}
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %s", what, changeBound)
		}
	}
}

// TestOFREPWebProvider connects @openfeature/ofrep-web-provider to `flagops serve --dir`:
// it becomes ready, then a flag change and the user's own override change each raise
// PROVIDER_CONFIGURATION_CHANGED, and the next evaluation returns the new value. The
// same with context tokens on: the provider sends its token as a header, and its
// EventSource, which cannot send headers, uses the advertised URI with access_token.
func TestOFREPWebProvider(t *testing.T) {
	bin := servetest.Build(t)
	tests := []struct {
		name string
		auth bool
	}{
		{name: "open"},
		{name: "with context tokens", auth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			servetest.WriteAtomic(t, filepath.Join(dir, "flag.yaml"), flagManifest("sidebar"))
			ctx := map[string]any{"targetingKey": userID}
			var extra []string
			token := ""
			if tt.auth {
				keys := filepath.Join(t.TempDir(), "keys.json")
				var priv ed25519.PrivateKey
				priv, extra = servetest.WriteKeys(t, keys), []string{"--context-token-keys-file", keys}
				token = servetest.MintToken(t, priv, namespace, time.Hour, map[string]any{"targetingKey": userID, "userId": userID})
			}
			base := servetest.Start(t, bin, dir, "127.0.0.1:0", extra...).URL
			h := startHarness(t, map[string]any{
				"baseUrl": base, "token": token, "context": ctx,
				"flags": []map[string]any{{"flag": flagKey, "type": "string", "default": "none"}},
			})

			ready := h.waitFor(t, "ready event", func(e event) bool { return e.Type == "ready" || e.Type == "error" })
			if ready.Type != "ready" || ready.value() != "sidebar" {
				t.Fatalf("first event %s (%s), value %s; want ready with sidebar", ready.Type, ready.Message, ready.value())
			}
			if len(h.streams) == 0 {
				h.waitFor(t, "EventSource", func(e event) bool { return e.Type == "eventsource" })
			}
			// The EventSource uses the URI the bulk response advertised, exactly as given.
			if len(h.advertised) == 0 || len(h.streams) != 1 || h.streams[0] != h.advertised[len(h.advertised)-1] {
				t.Errorf("the provider's EventSources opened %q; want one, the advertised %q", h.streams, h.advertised)
			}
			if tt.auth && !strings.Contains(h.streams[0], "access_token=") {
				t.Errorf("the EventSource URL %s has no access_token; EventSource cannot send the header", h.streams[0])
			}

			steps := []struct {
				what, file, manifest, want string
			}{
				{"flag change", "flag.yaml", flagManifest("stacked"), "stacked"},
				{"user override change", "override.yaml", overrideManifest("beta"), "beta"},
			}
			for _, st := range steps {
				written := time.Now()
				servetest.WriteAtomic(t, filepath.Join(dir, st.file), st.manifest)
				ev := h.waitFor(t, "PROVIDER_CONFIGURATION_CHANGED with "+st.want+" after the "+st.what,
					func(e event) bool { return e.Type == "changed" && e.value() == st.want })
				t.Logf("%s: PROVIDER_CONFIGURATION_CHANGED with the new value %.3f s after the file write", st.what, ev.at.Sub(written).Seconds())
			}
		})
	}
}
