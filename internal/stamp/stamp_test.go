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

package stamp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagops/flagops/internal/audit"
)

const (
	keyA = "0123456789abcdef0123456789abcdef-key-a"
	keyB = "0123456789abcdef0123456789abcdef-key-b"
)

func mustKeys(t *testing.T, data string) *Keys {
	t.Helper()
	k, err := ParseKeys([]byte(data))
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return k
}

func baseClaim() Claim {
	return Claim{Operation: OpUpdate, Kind: "FeatureFlag", Namespace: "billing", Name: "checkout",
		UID: "6d1c7f1e", Generation: 3, SpecSHA256: strings.Repeat("ab", 32), User: "alice@example.com"}
}

func consoleClaim() Claim {
	c := baseClaim()
	c.Request = audit.Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0"}
	return c
}

// TestVerifyEachFieldIsCovered changes one covered field at a time, of a claim without a
// request and of one with a request (a write made through the console): the stamp of the
// original claim must not verify for any of them.
func TestVerifyEachFieldIsCovered(t *testing.T) {
	keys := mustKeys(t, keyA)
	plain, console := baseClaim(), consoleClaim()
	tests := []struct {
		name   string
		claim  Claim
		change func(*Claim)
		want   bool
	}{
		{name: "unchanged", claim: plain, change: func(*Claim) {}, want: true},
		{name: "operation", claim: plain, change: func(c *Claim) { c.Operation = OpCreate }},
		{name: "kind", claim: plain, change: func(c *Claim) { c.Kind = "UserFlagOverride" }},
		{name: "namespace", claim: plain, change: func(c *Claim) { c.Namespace = "payments" }},
		{name: "name", claim: plain, change: func(c *Claim) { c.Name = "checkout2" }},
		{name: "uid", claim: plain, change: func(c *Claim) { c.UID = "6d1c7f1f" }},
		{name: "generation", claim: plain, change: func(c *Claim) { c.Generation = 4 }},
		{name: "spec hash", claim: plain, change: func(c *Claim) { c.SpecSHA256 = strings.Repeat("cd", 32) }},
		{name: "user", claim: plain, change: func(c *Claim) { c.User = "mallory@example.com" }},
		// Length prefixes: moving bytes between neighbouring fields changes the claim.
		{name: "namespace/name boundary", claim: plain, change: func(c *Claim) { c.Namespace, c.Name = "billingc", "heckout" }},
		// A request added by hand next to a stamp made without one.
		{name: "request added", claim: plain, change: func(c *Claim) { c.Request.Route = "PUT /flags/{name}" }},

		{name: "console: unchanged", claim: console, change: func(*Claim) {}, want: true},
		{name: "console: route", claim: console, change: func(c *Claim) { c.Request.Route = "DELETE /flags/{name}" }},
		{name: "console: source ip", claim: console, change: func(c *Claim) { c.Request.SourceIP = "203.0.113.8" }},
		{name: "console: user agent", claim: console, change: func(c *Claim) { c.Request.UserAgent = "curl/8.0" }},
		{name: "console: request removed", claim: console, change: func(c *Claim) { c.Request = audit.Request{} }},
		{name: "console: one field removed", claim: console, change: func(c *Claim) { c.Request.UserAgent = "" }},
		{name: "console: user", claim: console, change: func(c *Claim) { c.User = "mallory@example.com" }},
		{name: "console: spec hash", claim: console, change: func(c *Claim) { c.SpecSHA256 = strings.Repeat("cd", 32) }},
		{name: "console: route/source ip boundary", claim: console, change: func(c *Claim) {
			c.Request.Route, c.Request.SourceIP = "PUT /flags/{name}2", "03.0.113.7"
		}},
		{name: "console: user/route boundary", claim: console, change: func(c *Claim) {
			c.User, c.Request.Route = "alice@example.comPUT", " /flags/{name}"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stamp := keys.Sign(tt.claim)
			c := tt.claim
			tt.change(&c)
			if got := keys.Verify(c, stamp); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestVersions: a claim with a request is signed as version 2, and neither version's MAC is
// accepted under the other's prefix.
func TestVersions(t *testing.T) {
	keys := mustKeys(t, keyA)
	v1, v2 := keys.Sign(baseClaim()), keys.Sign(consoleClaim())
	if !strings.HasPrefix(v1, "v1.") || !strings.HasPrefix(v2, "v2.") {
		t.Errorf("stamps %q and %q, want versions 1 and 2", v1, v2)
	}
	if keys.Verify(consoleClaim(), "v1."+strings.TrimPrefix(v2, "v2.")) {
		t.Error("a version-2 MAC verifies under the v1 prefix")
	}
	if keys.Verify(baseClaim(), "v2."+strings.TrimPrefix(v1, "v1.")) {
		t.Error("a version-1 MAC verifies under the v2 prefix")
	}
}

// TestOldStampsVerify: stamps made before requests were covered (format version 1, written
// down here from that version) still verify, and a claim without a request is signed
// exactly as then, so objects stamped before an upgrade keep a verified actor.
func TestOldStampsVerify(t *testing.T) {
	keys := mustKeys(t, keyA)
	tests := []struct {
		name  string
		claim Claim
		stamp string
	}{
		{name: "update", claim: baseClaim(), stamp: "v1.Tjr7dYsWOUhhpOabNKBP64pnCCQr65DXroeXbiTx0sQ"},
		{name: "delete", claim: ForDelete("UserFlagOverride", "billing", "pilot", "6d1c7f1e", "alice@example.com"),
			stamp: "v1.14qK0HbfyLLMTYAIq6NNHNRRu0-Fd_0IcOoUIRIBFPw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !keys.Verify(tt.claim, tt.stamp) {
				t.Errorf("the version-1 stamp does not verify")
			}
			if got := keys.Sign(tt.claim); got != tt.stamp {
				t.Errorf("Sign = %q, want the version-1 stamp %q", got, tt.stamp)
			}
		})
	}
}

func TestWithRequest(t *testing.T) {
	r := &audit.Request{Route: "POST /users/{id}/overrides", SourceIP: "2001:db8::1"}
	if got := baseClaim().WithRequest(r); got.Request != *r {
		t.Errorf("WithRequest(%+v).Request = %+v", *r, got.Request)
	}
	if got := consoleClaim().WithRequest(nil); got.Request != (audit.Request{}) {
		t.Errorf("WithRequest(nil).Request = %+v, want none", got.Request)
	}
}

func TestVerifyKeysAndFormat(t *testing.T) {
	c := baseClaim()
	a := mustKeys(t, keyA)
	rotated := mustKeys(t, keyB+"\n"+keyA+"\n")
	tests := []struct {
		name  string
		keys  *Keys
		stamp string
		want  bool
	}{
		{name: "same key", keys: a, stamp: a.Sign(c), want: true},
		{name: "old key still verifies after rotation", keys: rotated, stamp: a.Sign(c), want: true},
		{name: "new key signs after rotation", keys: rotated, stamp: rotated.Sign(c), want: true},
		{name: "new stamp with only the old key", keys: a, stamp: rotated.Sign(c)},
		{name: "other key", keys: mustKeys(t, keyB), stamp: a.Sign(c)},
		{name: "nil keys verify nothing", keys: nil, stamp: a.Sign(c)},
		{name: "empty stamp", keys: a, stamp: ""},
		{name: "no prefix", keys: a, stamp: strings.TrimPrefix(a.Sign(c), "v1.")},
		{name: "not base64", keys: a, stamp: "v1.***"},
		{name: "truncated", keys: a, stamp: a.Sign(c)[:20]},
		{name: "a plain user name", keys: a, stamp: "alice@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.keys.Verify(c, tt.stamp); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Keys
	if s := none.Sign(c); s != "" {
		t.Errorf("nil Keys signed %q, want nothing", s)
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    int
		wantErr string
	}{
		{name: "one key with newline", data: keyA + "\n", want: 1},
		{name: "two keys and blank lines", data: "\n  " + keyA + "  \n\n" + keyB, want: 2},
		{name: "empty", data: " \n\n", wantErr: "no stamp key"},
		{name: "short key", data: keyA + "\nshort\n", wantErr: "line 2 is 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeys([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKeys error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(k.keys) != tt.want {
				t.Errorf("got %d keys, want %d", len(k.keys), tt.want)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte(keyA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "good", path: good},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: "failed to read the stamp key file"},
		{name: "bad", path: bad, wantErr: "stamp key file " + bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKeys(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadKeys error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !k.Verify(baseClaim(), k.Sign(baseClaim())) {
				t.Fatalf("LoadKeys: %v", err)
			}
		})
	}
}

func TestSpecHash(t *testing.T) {
	type spec struct {
		Enabled bool            `json:"enabled"`
		Value   json.RawMessage `json:"value,omitempty"`
	}
	hash := func(s any) string {
		t.Helper()
		h, err := SpecHash(s)
		if err != nil {
			t.Fatalf("SpecHash: %v", err)
		}
		return h
	}
	base := hash(spec{Enabled: true, Value: json.RawMessage(`{"a":1,"b":[1,2]}`)})
	tests := []struct {
		name string
		spec any
		same bool
	}{
		{name: "raw JSON with other key order and spaces", spec: spec{Enabled: true, Value: json.RawMessage(`{ "b": [1, 2], "a": 1 }`)}, same: true},
		{name: "another value", spec: spec{Enabled: true, Value: json.RawMessage(`{"a":2,"b":[1,2]}`)}},
		{name: "another switch", spec: spec{Enabled: false, Value: json.RawMessage(`{"a":1,"b":[1,2]}`)}},
		{name: "large integer kept exact", spec: spec{Enabled: true, Value: json.RawMessage(`{"a":9007199254740993,"b":[1,2]}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hash(tt.spec) == base; got != tt.same {
				t.Errorf("same hash = %v, want %v", got, tt.same)
			}
		})
	}
	if len(base) != 64 {
		t.Errorf("hash %q is not 64 hex digits", base)
	}
	if _, err := SpecHash(func() {}); err == nil {
		t.Error("SpecHash of a func: want an error")
	}
}

func TestForWriteAndDelete(t *testing.T) {
	tests := []struct {
		name string
		got  Claim
		want Claim
	}{
		{name: "generation 1 is a create without uid",
			got:  ForWrite("FeatureFlag", "ns", "f", "uid-1", 1, "h", "alice"),
			want: Claim{Operation: OpCreate, Kind: "FeatureFlag", Namespace: "ns", Name: "f", SpecSHA256: "h", User: "alice"}},
		{name: "generation 3 replaced generation 2",
			got:  ForWrite("FeatureFlag", "ns", "f", "uid-1", 3, "h", "alice"),
			want: Claim{Operation: OpUpdate, Kind: "FeatureFlag", Namespace: "ns", Name: "f", UID: "uid-1", Generation: 2, SpecSHA256: "h", User: "alice"}},
		{name: "delete",
			got:  ForDelete("UserFlagOverride", "ns", "o", "uid-2", "bob"),
			want: Claim{Operation: OpDelete, Kind: "UserFlagOverride", Namespace: "ns", Name: "o", UID: "uid-2", User: "bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}
