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

package controllers

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/auditevent"
)

// noise returns n characters that do not compress much.
func noise(n int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdef"[rng.IntN(16)]
	}
	return string(b)
}

// packedValues returns values as a checkpoint holds them.
func packedValues(values map[string]json.RawMessage) []byte {
	b, err := gzipJSON(values)
	if err != nil {
		panic(err)
	}
	return b
}

func TestCheckpointRoundTrip(t *testing.T) {
	f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "beta.dash", UID: "u-1", Generation: 3},
		Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true, Description: noise(8000)}}
	values := flagValues(f)
	before := map[string]json.RawMessage{"type": json.RawMessage(`"Boolean"`), "enabled": json.RawMessage(`false`)}
	at := time.Date(2026, 12, 4, 10, 0, 0, 123456000, time.UTC)
	ref := objectRef(KindFeatureFlag, f)
	update := audit.NewRecord(at, audit.Change{Action: audit.ActionFlagUpdated, Actor: audit.Actor{Username: "alice", Verified: true},
		Request: &audit.Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7"}, Object: ref, Before: before, After: values})
	coalesced := audit.NewRecord(at, audit.Change{Action: audit.ActionFlagUpdated, Object: ref, Before: before, After: values,
		Coalesced: &audit.Coalesced{FromGeneration: 2, ToGeneration: 3, Actors: []audit.Actor{{Username: "bob"}}}})
	deleted := audit.NewRecord(at, audit.Change{Action: audit.ActionFlagDeleted, Actor: audit.Actor{Username: "carol"},
		Object: ref, Before: values})

	tests := []struct {
		name    string
		pending []audit.Record
	}{
		{"settled", nil},
		{"an update", []audit.Record{update}},
		{"a coalesced update", []audit.Record{coalesced}},
		{"an update and the deletion", []audit.Record{update, deleted}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := &checkpoint{namespace: "ns", resourceVersion: "7",
				generation: 3, auditedAt: at, values: packedValues(values), pending: tt.pending}
			obj, err := ck.encode(KindFeatureFlag, f)
			if err != nil {
				t.Fatal(err)
			}
			if obj.Spec.Kind != "FeatureFlag" || obj.Spec.Name != "beta.dash" || obj.Spec.UID != "u-1" || obj.Name != "featureflag-u-1" {
				t.Fatalf("checkpoint names %s %s/%s (uid %s), want FeatureFlag ns/beta.dash (uid u-1)", obj.Spec.Kind, obj.Namespace, obj.Spec.Name, obj.Spec.UID)
			}
			// The values are stored once: the pending records add only what they replaced.
			if len(tt.pending) > 0 && len(obj.Spec.Pending) > len(obj.Spec.Values)/2 {
				t.Errorf("pending is %d bytes next to %d bytes of values: the values are stored again", len(obj.Spec.Pending), len(obj.Spec.Values))
			}
			obj.ResourceVersion = "7"
			got, err := decodeCheckpoint(obj)
			if err != nil {
				t.Fatal(err)
			}
			gotValues, err := valuesOf(got)
			if err != nil {
				t.Fatal(err)
			}
			if got.namespace != ck.namespace || got.resourceVersion != ck.resourceVersion ||
				got.generation != ck.generation || !got.auditedAt.Equal(ck.auditedAt) || !reflect.DeepEqual(gotValues, values) {
				t.Errorf("round trip changed the checkpoint: got %s rv %s generation %d at %s", got.namespace,
					got.resourceVersion, got.generation, got.auditedAt)
			}
			if len(got.pending) != len(ck.pending) {
				t.Fatalf("round trip gave %d pending records, want %d", len(got.pending), len(ck.pending))
			}
			for i := range ck.pending {
				want, _ := ck.pending[i].MarshalJSON()
				have, _ := got.pending[i].MarshalJSON()
				if string(have) != string(want) {
					t.Errorf("pending record %d changed in the round trip:\n got %.300s\nwant %.300s", i, have, want)
				}
			}
		})
	}
}

func TestDecodeCheckpointRejectsDamage(t *testing.T) {
	tests := []struct {
		name string
		spec v1.AuditCheckpointSpec
		want string
	}{
		{"values not gzip", v1.AuditCheckpointSpec{Values: []byte("{}")}, "spec.values"},
		{"pending not gzip", v1.AuditCheckpointSpec{Pending: []byte("[]")}, "spec.pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCheckpoint(&v1.AuditCheckpoint{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x"}, Spec: tt.spec})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "ns/x") {
				t.Errorf("error %v, want one naming ns/x and %s", err, tt.want)
			}
		})
	}
}

// TestEventNoteRequest: the Event of a change made through the console names its request;
// one without a request names none.
func TestEventNoteRequest(t *testing.T) {
	ref := audit.ObjectRef{Namespace: "ns", Name: "pilot", UID: "u-1", Generation: 2}
	tests := []struct {
		name    string
		request *audit.Request
		want    *auditevent.Request
	}{
		{name: "through the console", request: &audit.Request{Route: "PUT /users/{id}/overrides", SourceIP: "2001:db8::1", UserAgent: "Mozilla/5.0"},
			want: &auditevent.Request{Route: "PUT /users/{id}/overrides", SourceIP: "2001:db8::1", UserAgent: "Mozilla/5.0"}},
		{name: "another client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := audit.NewRecord(time.Now(), audit.Change{Action: audit.ActionUserOverrideUpdated, Actor: audit.Actor{Username: "alice", Verified: true},
				Object: ref, Subject: &audit.Subject{UserID: "user-1"}, Request: tt.request,
				Before: map[string]json.RawMessage{"beta": json.RawMessage(`{"enabled":false}`)}, After: map[string]json.RawMessage{"beta": json.RawMessage(`{"enabled":true}`)}})
			n, err := auditevent.Parse(auditevent.Format(eventNote(rec)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(n.Request, tt.want) {
				t.Errorf("the note's request = %+v, want %+v", n.Request, tt.want)
			}
		})
	}
}

func TestValuesOf(t *testing.T) {
	values := map[string]json.RawMessage{"enabled": json.RawMessage(`true`), "flags": json.RawMessage(`[{"key":"a"}]`)}
	tests := []struct {
		name    string
		ck      *checkpoint
		want    map[string]json.RawMessage
		wantErr string
	}{
		{"no checkpoint", nil, nil, ""},
		{"packed", &checkpoint{namespace: "ns", values: packedValues(values)}, values, ""},
		{"not gzip", &checkpoint{namespace: "ns", values: []byte(`{}`)}, nil, "the audited values of checkpoint ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := valuesOf(tt.ck)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("valuesOf = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
