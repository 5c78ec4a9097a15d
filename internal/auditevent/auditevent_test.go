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

package auditevent

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

const id = "5f0c2a3e9b7d4c1e8f6a0b2c4d6e8f01"

func raw(m map[string]string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k] = json.RawMessage(v)
	}
	return out
}

func TestFormatAndParse(t *testing.T) {
	tests := []struct {
		name string
		in   Note
		want string
		// keys, before, after as Parse returns them
		keys          []string
		before, after map[string]string
	}{
		{
			name: "flag update, verified",
			in: Note{SubjectKind: SubjectFlag, Subject: "beta.dashboard", Generation: 3, Actor: Actor{Username: "alice", Verified: true},
				Before: raw(map[string]string{"enabled": "false"}), After: raw(map[string]string{"enabled": "true"}), RecordID: id},
			want:   `flag beta.dashboard gen 3 by alice: {"enabled":false} -> {"enabled":true} [record ` + id + `]`,
			keys:   []string{"enabled"},
			before: map[string]string{"enabled": "false"}, after: map[string]string{"enabled": "true"},
		},
		{
			name: "override create, unverified with a claimed name, nulls left out",
			in: Note{SubjectKind: SubjectUser, Subject: "alice@example.com", Generation: 1,
				Actor:  Actor{Username: "system:serviceaccount:ci:deployer", Claimed: "mallory"},
				Before: raw(map[string]string{"beta": "null", "override/enabled": "null"}),
				After:  raw(map[string]string{"beta": `{ "value": true }`, "override/enabled": "true"}), RecordID: id},
			want:   `user alice@example.com gen 1 by system:serviceaccount:ci:deployer (unverified, claimed mallory): {} -> {"beta":{"value":true},"override/enabled":true} [record ` + id + `]`,
			keys:   []string{"beta", "override/enabled"},
			before: map[string]string{"beta": "null", "override/enabled": "null"}, after: map[string]string{"beta": `{"value":true}`, "override/enabled": "true"},
		},
		{
			name: "device delete, words that need quotes, HTML escaped",
			in: Note{SubjectKind: SubjectDevice, Subject: "tablet 7", Generation: 5, Actor: Actor{Username: "Jane Doe:", Verified: true},
				Before: raw(map[string]string{"override/reason": `"a -> b & <c>"`}), RecordID: id},
			want:   `device "tablet 7" gen 5 by "Jane Doe:": {"override/reason":"a -\u003e b \u0026 \u003cc\u003e"} -> {} [record ` + id + `]`,
			keys:   []string{"override/reason"},
			before: map[string]string{"override/reason": `"a -\u003e b \u0026 \u003cc\u003e"`}, after: map[string]string{"override/reason": "null"},
		},
		{
			name: "coalesced",
			in: Note{SubjectKind: SubjectFlag, Subject: "beta", Generation: 9, FromGeneration: 2, Actor: Actor{Username: "unknown"},
				Writers: []string{"tool-c", "tool-a", "x", "y", "z"},
				Before:  raw(map[string]string{"rollout": `{"percentage":10}`}), After: raw(map[string]string{"rollout": `{"percentage":50}`}), RecordID: id},
			want:   `flag beta gen 2-9 by unknown (coalesced, writers tool-c,tool-a,x,y +1): {"rollout":{"percentage":10}} -> {"rollout":{"percentage":50}} [record ` + id + `]`,
			keys:   []string{"rollout"},
			before: map[string]string{"rollout": `{"percentage":10}`}, after: map[string]string{"rollout": `{"percentage":50}`},
		},
		{
			name: "a change made through the console",
			in: Note{SubjectKind: SubjectFlag, Subject: "beta", Generation: 3, Actor: Actor{Username: "alice@example.com", Verified: true},
				Request: &Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"},
				Before:  raw(map[string]string{"enabled": "false"}), After: raw(map[string]string{"enabled": "true"}), RecordID: id},
			want:   `flag beta gen 3 by alice@example.com via "PUT /flags/{name}" from 203.0.113.7 using "Mozilla/5.0 (X11; Linux x86_64)": {"enabled":false} -> {"enabled":true} [record ` + id + `]`,
			keys:   []string{"enabled"},
			before: map[string]string{"enabled": "false"}, after: map[string]string{"enabled": "true"},
		},
		{
			name: "only the source, an IPv6 address, of an unverified change",
			in: Note{SubjectKind: SubjectDevice, Subject: "tablet-1", Generation: 2, Actor: Actor{Username: "kubectl", Claimed: "bob"},
				Request: &Request{SourceIP: "2001:db8::1"}, Before: raw(map[string]string{"override/enabled": "true"}), RecordID: id},
			want:   `device tablet-1 gen 2 by kubectl (unverified, claimed bob) from 2001:db8::1: {"override/enabled":true} -> {} [record ` + id + `]`,
			keys:   []string{"override/enabled"},
			before: map[string]string{"override/enabled": "true"}, after: map[string]string{"override/enabled": "null"},
		},
		{
			name: "an address that ends with a colon, and a bare route",
			in: Note{SubjectKind: SubjectUser, Subject: "u", Generation: 1, Actor: Actor{Username: "alice", Verified: true},
				Request: &Request{Route: "import", SourceIP: "2001:db8::"}, After: raw(map[string]string{"override/enabled": "true"}), RecordID: id},
			want:   `user u gen 1 by alice via import from "2001:db8::": {} -> {"override/enabled":true} [record ` + id + `]`,
			keys:   []string{"override/enabled"},
			before: map[string]string{"override/enabled": "null"}, after: map[string]string{"override/enabled": "true"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Format(tt.in)
			if got != tt.want {
				t.Fatalf("Format:\n got %s\nwant %s", got, tt.want)
			}
			n, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if n.SubjectKind != tt.in.SubjectKind || n.Subject != tt.in.Subject || n.Generation != tt.in.Generation ||
				n.FromGeneration != tt.in.FromGeneration || n.Actor != tt.in.Actor || n.RecordID != id || n.Truncated {
				t.Errorf("Parse = %+v, from %+v", n, tt.in)
			}
			if len(tt.in.Writers) > 0 && (!reflect.DeepEqual(n.Writers, tt.in.Writers[:maxWriters]) || n.MoreWriters != len(tt.in.Writers)-maxWriters) {
				t.Errorf("writers %v +%d", n.Writers, n.MoreWriters)
			}
			if !reflect.DeepEqual(n.Keys, tt.keys) || !reflect.DeepEqual(n.Before, raw(tt.before)) || !reflect.DeepEqual(n.After, raw(tt.after)) {
				t.Errorf("keys %v before %s after %s", n.Keys, n.Before, n.After)
			}
			if !reflect.DeepEqual(n.Request, tt.in.Request) {
				t.Errorf("request %+v, want %+v", n.Request, tt.in.Request)
			}
		})
	}
}

// TestFormatRequestOfCoalesced: a coalesced record has no request (nobody is named for the
// range), so a note of one shows none even if given one.
func TestFormatRequestOfCoalesced(t *testing.T) {
	n := Note{SubjectKind: SubjectFlag, Subject: "beta", Generation: 9, FromGeneration: 2, Actor: Actor{Username: "unknown"},
		Writers: []string{"tool-a"}, Request: &Request{SourceIP: "203.0.113.7"}, RecordID: id}
	got := Format(n)
	if want := `flag beta gen 2-9 by unknown (coalesced, writers tool-a): {} -> {} [record ` + id + `]`; got != want {
		t.Errorf("Format:\n got %s\nwant %s", got, want)
	}
}

func TestFormatTruncates(t *testing.T) {
	big := `"` + strings.Repeat("x", 3000) + `"`
	many := map[string]json.RawMessage{}
	for i := range 60 {
		many[fmt.Sprintf("flag.number-%02d", i)] = json.RawMessage(`{"value":"some text"}`)
	}
	long := strings.Repeat("é", 400)
	tests := []struct {
		name     string
		in       Note
		wantKeys int
		wantCut  []string
		wantMore int
	}{
		{
			name: "one large value is replaced by its length",
			in: Note{SubjectKind: SubjectFlag, Subject: "beta", Generation: 2, Actor: Actor{Username: "alice", Verified: true},
				Before: raw(map[string]string{"description": big, "enabled": "false"}), After: raw(map[string]string{"description": `"short"`, "enabled": "true"}), RecordID: id},
			wantKeys: 2, wantCut: []string{"description"},
		},
		{
			name:     "many keys: values cut, then keys left out",
			in:       Note{SubjectKind: SubjectUser, Subject: "alice", Generation: 1, Actor: Actor{Username: "alice", Verified: true}, After: many, RecordID: id},
			wantKeys: -1, wantMore: -1,
		},
		{
			name: "the longest words there can be, with the longest request",
			in: Note{SubjectKind: SubjectDevice, Subject: long, Generation: 1<<63 - 1, Actor: Actor{Username: long, Claimed: long},
				Request: &Request{Route: long, SourceIP: long, UserAgent: long}, Before: many, After: raw(map[string]string{"x": big}), RecordID: long},
			wantKeys: -1, wantMore: -1,
		},
		{
			name: "the longest words there can be",
			in: Note{SubjectKind: SubjectDevice, Subject: long, Generation: 1<<63 - 1, FromGeneration: 1<<63 - 2, Actor: Actor{Username: long},
				Writers: []string{long, long, long, long, long, long}, Before: many, After: raw(map[string]string{"x": big}), RecordID: long},
			wantKeys: -1, wantMore: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Format(tt.in)
			if len(got) > NoteLimit {
				t.Fatalf("note of %d bytes, more than %d", len(got), NoteLimit)
			}
			if !strings.HasSuffix(got, "; full record "+word(tt.in.RecordID, maxWord)+" in the audit sink]") {
				t.Errorf("no truncation tail: %s", got)
			}
			n, err := Parse(got)
			if err != nil {
				t.Fatalf("%v: %s", err, got)
			}
			if !n.Truncated {
				t.Error("not marked truncated")
			}
			if r := tt.in.Request; r != nil && (n.Request == nil || n.Request.Route == "" || n.Request.SourceIP == "" || n.Request.UserAgent == "") {
				t.Errorf("request %+v, want every part of %+v, cut", n.Request, r)
			}
			if tt.wantKeys >= 0 && len(n.Keys) != tt.wantKeys {
				t.Errorf("keys %v", n.Keys)
			}
			for _, k := range tt.wantCut {
				if !IsCut(n.Before[k]) || string(n.Before[k]) != `"<3002 bytes>"` {
					t.Errorf("%s before = %s, want it cut", k, n.Before[k])
				}
				if IsCut(n.After[k]) {
					t.Errorf("%s after = %s was cut", k, n.After[k])
				}
			}
			if tt.wantMore < 0 && (n.MoreKeys == 0 || len(n.Keys)+n.MoreKeys < 60) {
				t.Errorf("%d keys shown, %d more: %s", len(n.Keys), n.MoreKeys, got)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, note := range []string{
		"",
		"the schedule step at 2030-01-01T10:00:00Z took effect: rollout.percentage 25",
		"flag beta gen x by alice: {} -> {} [record 1]",
		"flag beta gen 1 by alice: {} -> {}",
		`flag beta gen 1 by alice: {"a":1} -> {"a" [record 1]`,
		"flag beta gen 1 by alice: {} -> {} [record 1] more",
		"flag beta gen 1 by alice via : {} -> {} [record 1]",
		"flag beta gen 1 by alice from: {} -> {} [record 1]",
		`flag beta gen 1 by alice using "x: {} -> {} [record 1]`,
	} {
		if _, err := Parse(note); err == nil {
			t.Errorf("Parse(%q) succeeded", note)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct{ action, want, kind string }{
		{"flag.created", v1.EventReasonFlagCreated, SubjectFlag},
		{"flag.updated", v1.EventReasonFlagUpdated, SubjectFlag},
		{"flag.deleted", v1.EventReasonFlagDeleted, SubjectFlag},
		{"user_override.created", v1.EventReasonOverrideCreated, SubjectUser},
		{"device_override.updated", v1.EventReasonOverrideUpdated, SubjectDevice},
		{"user_override.deleted", v1.EventReasonOverrideDeleted, SubjectUser},
		{"user_override.expired", "", SubjectUser},
		{"flag.schedule_applied", "", SubjectFlag},
		{"pod.created", "", ""},
	}
	for _, tt := range tests {
		if got := Reason(tt.action); got != tt.want {
			t.Errorf("Reason(%q) = %q, want %q", tt.action, got, tt.want)
		}
		if got := SubjectKindOf(tt.action); got != tt.kind {
			t.Errorf("SubjectKindOf(%q) = %q, want %q", tt.action, got, tt.kind)
		}
		if tt.want != "" && !IsChangeReason(tt.want) {
			t.Errorf("IsChangeReason(%q) = false", tt.want)
		}
	}
	if IsChangeReason(v1.EventReasonOverrideExpired) {
		t.Error("OverrideExpired is a change reason")
	}
}
