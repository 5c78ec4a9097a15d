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

// Package ofrep tests the evaluator's OFREP endpoints with a client flagops did not write:
// the OpenFeature JavaScript server SDK and its OFREP provider, run by Node.js from
// harness.mjs. `make test` installs the npm packages (package-lock.json) on first use.
package ofrep

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/server"
)

type testCase struct {
	Flag    string         `json:"flag"`
	Type    string         `json:"type"`
	Default any            `json:"default"`
	Context map[string]any `json:"context,omitempty"`
}

type details struct {
	Flag         string         `json:"flag"`
	Type         string         `json:"type"`
	Value        any            `json:"value"`
	Reason       *string        `json:"reason"`
	Variant      *string        `json:"variant"`
	ErrorCode    *string        `json:"errorCode"`
	FlagMetadata map[string]any `json:"flagMetadata"`
}

// The expiry and reason of user-42's override.
var pilotExpiry = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

const pilotReason = "Pilot customer, ticket 42."

func newStore(t *testing.T) *evaluator.Store {
	t.Helper()
	const ns = "shop"
	store := evaluator.NewStore()
	on := true
	expires := pilotExpiry
	_, _, err := store.Apply(
		evaluator.UpsertFlag(ns, "billing.enabled", evaluator.FlagSpec{Type: evaluator.TypeBoolean, Enabled: true}),
		evaluator.UpsertFlag(ns, "beta.dash", evaluator.FlagSpec{Type: evaluator.TypeBoolean}),
		evaluator.UpsertFlag(ns, "checkout.layout", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true,
			Value: json.RawMessage(`"sidebar"`), OffValue: json.RawMessage(`"classic"`)}),
		evaluator.UpsertFlag(ns, "search.page-size", evaluator.FlagSpec{Type: evaluator.TypeNumber, Enabled: true,
			Value: json.RawMessage(`42`)}),
		evaluator.UpsertFlag(ns, "billing.free-tier-limits", evaluator.FlagSpec{Type: evaluator.TypeObject, Enabled: true,
			Value: json.RawMessage(`{"maxStudents":1,"historyLimit":5}`)}),
		evaluator.UpsertFlag(ns, "ui.banner", evaluator.FlagSpec{Type: evaluator.TypeString,
			Value: json.RawMessage(`"sale"`)}),
		evaluator.UpsertFlag(ns, "checkout.legacy", evaluator.FlagSpec{Type: evaluator.TypeString,
			Value: json.RawMessage(`"v2"`), OffValue: json.RawMessage(`"classic"`)}),
		evaluator.UpsertFlag(ns, "admin.panel", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true,
			Value: json.RawMessage(`"shown"`), OffValue: json.RawMessage(`"hidden"`), AllowedRoles: []string{"admin"}}),
		evaluator.UpsertFlag(ns, "search.ranker", evaluator.FlagSpec{Type: evaluator.TypeString, Enabled: true,
			Value: json.RawMessage(`"v2"`), Rollout: &evaluator.Rollout{Percentage: 50}}),
		evaluator.UpsertOverride(evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "user-42", Namespace: ns,
			Name: "pilot", UID: "u1", CreatedAt: time.Unix(1, 0), Enabled: true, ExpiresAt: &expires, Reason: pilotReason,
			Entries: []evaluator.OverrideEntry{{Key: "beta.dash", Enabled: &on}}}),
	)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return store
}

// runHarness evaluates cases with the OpenFeature SDK against baseURL.
func runHarness(t *testing.T, baseURL string, cases []testCase) []details {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the OFREP client test: %v", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@openfeature", "ofrep-provider")); err != nil {
		t.Fatalf("the harness's npm packages are missing; run `make test` or `npm ci` in test/ofrep: %v", err)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "harness.mjs", baseURL)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("harness: %v\n%s", err, stderr.String())
	}
	var got []details
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("harness output %q: %v", out, err)
	}
	if len(got) != len(cases) {
		t.Fatalf("harness returned %d results for %d cases", len(got), len(cases))
	}
	return got
}

func str(s string) *string { return &s }

// clientCase is one evaluation with the outcome every OpenFeature client must agree on.
type clientCase struct {
	name    string
	c       testCase
	want    any
	reason  *string
	errCode *string
	// lenientJS also accepts the ERROR/GENERAL outcome of the JavaScript server provider,
	// which predates value omission (see clientCases).
	lenientJS bool
	// hiddenFromMap: the flag is not in the context's effective map (the role gate kept
	// it out), so a client that holds that map (clientMap) returns the caller's default
	// with FLAG_NOT_FOUND, as docs/ofrep.md says of web providers.
	hiddenFromMap bool
	// meta are flag metadata entries the result must have.
	meta map[string]any
}

// clientKind says how a client gets its values.
type clientKind uint8

const (
	clientJS  clientKind = iota // the JavaScript server provider: one request per evaluation
	clientGo                    // the Go OFREP provider: one request per evaluation
	clientMap                   // flagops' Go provider: the context's effective map, from the stream
)

// clientCases are the evaluations run with every client. The value is what flagops decided
// (or the caller's default where flagops has no value): each client must return it. Reasons
// follow docs/ofrep.md: DISABLED exactly when there is no value.
func clientCases() []clientCase {
	user := map[string]any{"targetingKey": "user-7"}
	pilot := map[string]any{"targetingKey": "user-42"}
	admin := map[string]any{"targetingKey": "user-7", "role": "admin"}
	return []clientCase{
		{name: "boolean", c: testCase{Flag: "billing.enabled", Type: "boolean", Default: false, Context: user}, want: true, reason: str("STATIC")},
		// The kill switch decides a value (false): a caller default of true must not win.
		{name: "boolean off by the kill switch, caller default true", c: testCase{Flag: "beta.dash", Type: "boolean", Default: true, Context: user},
			want: false, reason: str("STATIC")},
		{name: "boolean from a user override", c: testCase{Flag: "beta.dash", Type: "boolean", Default: false, Context: pilot}, want: true, reason: str("TARGETING_MATCH"),
			meta: map[string]any{"source": "user-override:shop/pilot", "overrideReason": pilotReason, "overrideExpiresAt": "2100-01-01T00:00:00Z"}},
		{name: "string", c: testCase{Flag: "checkout.layout", Type: "string", Default: "none", Context: user}, want: "sidebar", reason: str("STATIC")},
		{name: "string off by the kill switch serves its off value", c: testCase{Flag: "checkout.legacy", Type: "string", Default: "none", Context: user},
			want: "classic", reason: str("STATIC")},
		{name: "number", c: testCase{Flag: "search.page-size", Type: "number", Default: 10, Context: user}, want: 42.0, reason: str("STATIC")},
		{name: "object", c: testCase{Flag: "billing.free-tier-limits", Type: "object", Default: map[string]any{}, Context: user},
			want: map[string]any{"maxStudents": 1.0, "historyLimit": 5.0}, reason: str("STATIC")},
		{name: "role gate serves its off value", c: testCase{Flag: "admin.panel", Type: "string", Default: "none", Context: user},
			want: "hidden", reason: str("TARGETING_MATCH"), hiddenFromMap: true},
		{name: "role gate passed", c: testCase{Flag: "admin.panel", Type: "string", Default: "none", Context: admin},
			want: "shown", reason: str("STATIC")},
		// The server omits value (open-feature/protocol#46, #49) and says DISABLED.
		// @openfeature/ofrep-provider 0.1.3, the newest JavaScript server provider, pins an
		// ofrep-core that predates value omission and reports it as GENERAL. Either way the
		// caller's default applies, which is what matters.
		{name: "off with no off value gives the caller's default", c: testCase{Flag: "ui.banner", Type: "string", Default: "none", Context: user},
			want: "none", reason: str("DISABLED"), lenientJS: true},
		{name: "rollout without a principal and no off value gives the caller's default", c: testCase{Flag: "search.ranker", Type: "string", Default: "none", Context: map[string]any{}},
			want: "none", reason: str("DISABLED"), lenientJS: true},
		{name: "missing flag gives the caller's default", c: testCase{Flag: "no.such-flag", Type: "boolean", Default: true, Context: user},
			want: true, reason: str("ERROR"), errCode: str("FLAG_NOT_FOUND")},
		{name: "type mismatch gives the caller's default", c: testCase{Flag: "checkout.layout", Type: "boolean", Default: true, Context: user},
			want: true, reason: str("ERROR"), errCode: str("TYPE_MISMATCH")},
	}
}

// baseURLs are the OFREP base URLs every client is run against: the unprefixed routes
// (default namespace) and the namespace prefix.
func baseURLs(srvURL string) []string {
	return []string{srvURL, srvURL + "/namespaces/shop"}
}

// checkClient runs the cases through evaluate, once per base URL, and checks every outcome.
func checkClient(t *testing.T, srvURL string, kind clientKind, evaluate func(t *testing.T, baseURL string, cases []testCase) []details) {
	t.Helper()
	tests := clientCases()
	cases := make([]testCase, len(tests))
	for i, tt := range tests {
		cases[i] = tt.c
	}
	for _, base := range baseURLs(srvURL) {
		got := evaluate(t, base, cases)
		for i, tt := range tests {
			t.Run(base[len(srvURL):]+"/"+tt.name, func(t *testing.T) {
				d := got[i]
				if kind == clientMap && tt.hiddenFromMap {
					tt.want, tt.reason, tt.errCode = tt.c.Default, str("ERROR"), str("FLAG_NOT_FOUND")
				}
				if !reflect.DeepEqual(d.Value, tt.want) {
					t.Errorf("value = %#v, want %#v", d.Value, tt.want)
				}
				if kind == clientJS && tt.lenientJS && deref(d.Reason) == "ERROR" && deref(d.ErrorCode) == "GENERAL" {
					return
				}
				if !reflect.DeepEqual(d.Reason, tt.reason) {
					t.Errorf("reason = %v, want %v", deref(d.Reason), deref(tt.reason))
				}
				if !reflect.DeepEqual(d.ErrorCode, tt.errCode) {
					t.Errorf("errorCode = %v, want %v", deref(d.ErrorCode), deref(tt.errCode))
				}
				for k, v := range tt.meta {
					if d.FlagMetadata[k] != v {
						t.Errorf("flagMetadata[%s] = %#v, want %#v (flagMetadata %v)", k, d.FlagMetadata[k], v, d.FlagMetadata)
					}
				}
			})
		}
	}
}

// TestOpenFeatureSDK runs the cases with the OpenFeature JavaScript server SDK.
func TestOpenFeatureSDK(t *testing.T) {
	srv := httptest.NewServer(server.New(newStore(t), server.Options{DefaultNamespace: "shop"}))
	defer srv.Close()
	checkClient(t, srv.URL, clientJS, runHarness)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
