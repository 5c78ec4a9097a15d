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

package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRecordRequest: the request object (seed 000: route, client IP and user agent of a
// write made through flagops' console) round-trips through the record JSON, keeps only
// the known fields, and is omitted when nothing is known, as for kubectl and GitOps writes.
func TestRecordRequest(t *testing.T) {
	tests := []struct {
		name     string
		request  *Request
		wantJSON string // the "request" member, or "" when it must be absent
		want     *Request
	}{
		{name: "kubectl or GitOps write", request: nil},
		{name: "empty is omitted", request: &Request{}},
		{
			name:     "console write",
			request:  &Request{Route: "PUT /api/v1/namespaces/shop/flags/beta", SourceIP: "203.0.113.7", UserAgent: "flagops-console/1.0"},
			wantJSON: `"request":{"route":"PUT /api/v1/namespaces/shop/flags/beta","sourceIP":"203.0.113.7","userAgent":"flagops-console/1.0"}`,
			want:     &Request{Route: "PUT /api/v1/namespaces/shop/flags/beta", SourceIP: "203.0.113.7", UserAgent: "flagops-console/1.0"},
		},
		{
			name:     "unknown fields are omitted",
			request:  &Request{SourceIP: "2001:db8::1"},
			wantJSON: `"request":{"sourceIP":"2001:db8::1"}`,
			want:     &Request{SourceIP: "2001:db8::1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := NewRecord(testEpoch, Change{
				Action:  ActionFlagUpdated,
				Actor:   Actor{Username: "alice@example.com"},
				Object:  ObjectRef{Namespace: "shop", Name: "beta", UID: "u1", Generation: 2},
				Request: tc.request,
				Before:  map[string]json.RawMessage{"enabled": json.RawMessage(`false`)},
				After:   map[string]json.RawMessage{"enabled": json.RawMessage(`true`)},
			})
			if err := in.Validate(); err != nil {
				t.Fatal(err)
			}
			data, err := in.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantJSON == "" {
				if bytes.Contains(data, []byte(`"request"`)) {
					t.Errorf("%s has a request object, want none", data)
				}
			} else if !bytes.Contains(data, []byte(tc.wantJSON)) {
				t.Errorf("%s lacks %s", data, tc.wantJSON)
			}
			var out Record
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.Request, tc.want) {
				t.Errorf("request after the round trip = %+v, want %+v", out.Request, tc.want)
			}
			again, err := out.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Errorf("second encoding differs:\n%s\n%s", again, data)
			}
		})
	}
}

func TestRecordRequestValidateAndClone(t *testing.T) {
	r := testRecord(1)
	r.Request = &Request{SourceIP: "not-an-ip"}
	if err := r.Validate(); !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "request.sourceIP") {
		t.Errorf("Validate = %v, want ErrInvalidRecord naming request.sourceIP", err)
	}
	r.Request = &Request{Route: "PATCH /flags/x", SourceIP: "10.0.0.1"}
	c := r.clone()
	c.Request.Route = "x"
	if r.Request.Route != "PATCH /flags/x" {
		t.Error("clone shares the request with the original")
	}
}

// TestSinksCarryRequest: stdout, file: and the HTTP sink's CloudEvents write the request of
// a record made through the console.
func TestSinksCarryRequest(t *testing.T) {
	rec := testRecord(1)
	rec.Request = &Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0 <X11>"}
	want := []byte(`"request":{"route":"PUT /flags/{name}","sourceIP":"203.0.113.7","userAgent":"Mozilla/5.0 <X11>"}`)

	var buf bytes.Buffer
	stream, err := NewStream("stdout", &buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	file, err := NewFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Sink{stream, file} {
		if err := s.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	event, err := NewEvent(rec, DefaultEventSource)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"stdout": buf.Bytes(), "file": written, "cloudevent data": event.Data()} {
		if !bytes.Contains(got, want) {
			t.Errorf("%s: %s lacks %s", name, got, want)
		}
	}
}
