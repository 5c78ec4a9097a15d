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
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRequestFromExtra: the webhook keeps each extra that has exactly one acceptable value
// and drops the others, so that a bad value never fails a write and never reaches a record.
func TestRequestFromExtra(t *testing.T) {
	long := strings.Repeat("é", MaxRequestField) // 2 bytes each
	tests := []struct {
		name  string
		extra map[string][]string
		want  *Request
	}{
		{name: "no extras", extra: nil},
		{name: "other extras only", extra: map[string][]string{"scopes.example.com": {"read"}}},
		{name: "all three", extra: map[string][]string{
			ExtraRoute: {"POST /users/{id}/overrides"}, ExtraSourceIP: {"203.0.113.7"}, ExtraUserAgent: {"Mozilla/5.0 (X11; Linux x86_64)"}},
			want: &Request{Route: "POST /users/{id}/overrides", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}},
		{name: "surrounding space trimmed", extra: map[string][]string{ExtraRoute: {"  PUT /flags/{name} "}, ExtraSourceIP: {" 2001:db8::1 "}},
			want: &Request{Route: "PUT /flags/{name}", SourceIP: "2001:db8::1"}},
		{name: "an IPv4-mapped address is written as IPv4", extra: map[string][]string{ExtraSourceIP: {"::ffff:203.0.113.7"}},
			want: &Request{SourceIP: "203.0.113.7"}},
		{name: "an IPv6 address in canonical form", extra: map[string][]string{ExtraSourceIP: {"2001:DB8:0:0::1"}},
			want: &Request{SourceIP: "2001:db8::1"}},
		{name: "a source that is not an IP address is dropped", extra: map[string][]string{ExtraSourceIP: {"proxy.example.com"}, ExtraRoute: {"PUT /x"}},
			want: &Request{Route: "PUT /x"}},
		{name: "an address with a port is dropped", extra: map[string][]string{ExtraSourceIP: {"203.0.113.7:443"}}},
		{name: "two values are dropped", extra: map[string][]string{ExtraSourceIP: {"203.0.113.7", "203.0.113.8"}, ExtraUserAgent: {"curl/8"}},
			want: &Request{UserAgent: "curl/8"}},
		{name: "no value is dropped", extra: map[string][]string{ExtraRoute: {}}},
		{name: "an empty value is dropped", extra: map[string][]string{ExtraRoute: {"   "}}},
		{name: "a control character is dropped", extra: map[string][]string{ExtraUserAgent: {"evil\nforged: line"}, ExtraRoute: {"PUT /a\x00"}}},
		{name: "a bidi override is dropped", extra: map[string][]string{ExtraUserAgent: {"abc\u202edef"}}},
		{name: "invalid UTF-8 is dropped", extra: map[string][]string{ExtraUserAgent: {"abc\xff"}}},
		{name: "a long value is cut at a character boundary", extra: map[string][]string{ExtraUserAgent: {long}, ExtraRoute: {"GET " + strings.Repeat("x", 400)}},
			want: &Request{UserAgent: long[:MaxRequestField], Route: ("GET " + strings.Repeat("x", 400))[:MaxRequestField]}},
		{name: "a long value with a multi-byte character at the cut", extra: map[string][]string{ExtraUserAgent: {"x" + long}},
			want: &Request{UserAgent: ("x" + long)[:MaxRequestField-1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RequestFromExtra(tt.extra)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("RequestFromExtra = %+v, want %+v", got, tt.want)
			}
			if got == nil {
				return
			}
			for _, s := range []string{got.Route, got.UserAgent} {
				if len(s) > MaxRequestField || !utf8.ValidString(s) {
					t.Errorf("%q is longer than %d bytes or not UTF-8", s, MaxRequestField)
				}
			}
			r := testRecord(1)
			r.Request = got
			if err := r.Validate(); err != nil {
				t.Errorf("a record with the request is invalid: %v", err)
			}
		})
	}
}
