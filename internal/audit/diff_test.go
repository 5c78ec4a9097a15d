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
	"encoding/json"
	"reflect"
	"testing"
)

type raw = json.RawMessage

func TestDiff(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]json.RawMessage
		changed       []string
		b, a          map[string]string // expected values, as text
	}{
		{
			name:    "both empty",
			changed: []string{},
			b:       map[string]string{},
			a:       map[string]string{},
		},
		{
			name:    "created keys are null before",
			after:   map[string]json.RawMessage{"value": raw(`"x"`), "enabled": raw(`true`)},
			changed: []string{"enabled", "value"},
			b:       map[string]string{"enabled": "null", "value": "null"},
			a:       map[string]string{"enabled": "true", "value": `"x"`},
		},
		{
			name:    "deleted keys are null after",
			before:  map[string]json.RawMessage{"value": raw(`{"a":1}`)},
			after:   map[string]json.RawMessage{},
			changed: []string{"value"},
			b:       map[string]string{"value": `{"a":1}`},
			a:       map[string]string{"value": "null"},
		},
		{
			name: "object key order and whitespace do not matter",
			before: map[string]json.RawMessage{
				"value": raw(`{"a": 1, "b": [1, 2, {"c": null}]}`),
			},
			after: map[string]json.RawMessage{
				"value": raw("{\n\"b\":[1,2,{\"c\":null}],\"a\":1}"),
			},
			changed: []string{},
			b:       map[string]string{},
			a:       map[string]string{},
		},
		{
			name:    "numbers compare by value",
			before:  map[string]json.RawMessage{"p": raw(`10`), "q": raw(`0.5`), "r": raw(`-0`), "s": raw(`12345678901234567890`)},
			after:   map[string]json.RawMessage{"p": raw(`1e1`), "q": raw(`5E-1`), "r": raw(`0.000`), "s": raw(`1.2345678901234567890e19`)},
			changed: []string{},
			b:       map[string]string{},
			a:       map[string]string{},
		},
		{
			name:    "numbers beyond float64 precision differ",
			before:  map[string]json.RawMessage{"n": raw(`9007199254740993`)},
			after:   map[string]json.RawMessage{"n": raw(`9007199254740992`)},
			changed: []string{"n"},
			b:       map[string]string{"n": `9007199254740993`},
			a:       map[string]string{"n": `9007199254740992`},
		},
		{
			name:    "huge exponents",
			before:  map[string]json.RawMessage{"n": raw(`1e999999999999`), "m": raw(`1e999999999999`)},
			after:   map[string]json.RawMessage{"n": raw(`10e999999999998`), "m": raw(`1e999999999998`)},
			changed: []string{"m"},
			b:       map[string]string{"m": `1e999999999999`},
			a:       map[string]string{"m": `1e999999999998`},
		},
		{
			name:    "nested change",
			before:  map[string]json.RawMessage{"v": raw(`{"a":{"b":[1,2,3]}}`), "same": raw(`"s"`)},
			after:   map[string]json.RawMessage{"v": raw(`{"a":{"b":[1,2,4]}}`), "same": raw(`"s"`)},
			changed: []string{"v"},
			b:       map[string]string{"v": `{"a":{"b":[1,2,3]}}`},
			a:       map[string]string{"v": `{"a":{"b":[1,2,4]}}`},
		},
		{
			name:    "types differ",
			before:  map[string]json.RawMessage{"a": raw(`1`), "b": raw(`"1"`), "c": raw(`[]`), "d": raw(`{}`), "e": raw(`false`), "f": raw(`[1]`), "g": raw(`{"x":1}`)},
			after:   map[string]json.RawMessage{"a": raw(`"1"`), "b": raw(`1`), "c": raw(`{}`), "d": raw(`[]`), "e": raw(`0`), "f": raw(`[1,1]`), "g": raw(`{"y":1}`)},
			changed: []string{"a", "b", "c", "d", "e", "f", "g"},
			b:       map[string]string{"a": `1`, "b": `"1"`, "c": `[]`, "d": `{}`, "e": `false`, "f": `[1]`, "g": `{"x":1}`},
			a:       map[string]string{"a": `"1"`, "b": `1`, "c": `{}`, "d": `[]`, "e": `0`, "f": `[1,1]`, "g": `{"y":1}`},
		},
		{
			name:    "explicit null equals missing",
			before:  map[string]json.RawMessage{"gone": raw(`null`), "empty": nil, "ws": raw(" ")},
			after:   map[string]json.RawMessage{},
			changed: []string{},
			b:       map[string]string{},
			a:       map[string]string{},
		},
		{
			name:    "null to value",
			before:  map[string]json.RawMessage{"k": raw(`null`)},
			after:   map[string]json.RawMessage{"k": raw(`false`)},
			changed: []string{"k"},
			b:       map[string]string{"k": "null"},
			a:       map[string]string{"k": "false"},
		},
		{
			name:    "invalid json compares as text",
			before:  map[string]json.RawMessage{"same": raw(` {oops `), "diff": raw(`{oops`), "trail": raw(`1 2`)},
			after:   map[string]json.RawMessage{"same": raw(`{oops`), "diff": raw(`{oops!`), "trail": raw(`1`)},
			changed: []string{"diff", "trail"},
			b:       map[string]string{"diff": `{oops`, "trail": `1 2`},
			a:       map[string]string{"diff": `{oops!`, "trail": `1`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed, b, a := Diff(tc.before, tc.after)
			if changed == nil || b == nil || a == nil {
				t.Fatal("Diff returned nil")
			}
			if !reflect.DeepEqual(changed, tc.changed) {
				t.Errorf("changed = %v, want %v", changed, tc.changed)
			}
			if got := asText(b); !reflect.DeepEqual(got, tc.b) {
				t.Errorf("before = %v, want %v", got, tc.b)
			}
			if got := asText(a); !reflect.DeepEqual(got, tc.a) {
				t.Errorf("after = %v, want %v", got, tc.a)
			}
		})
	}
}

func asText(m map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func TestDiffCopiesValues(t *testing.T) {
	before := map[string]json.RawMessage{"k": raw(`[1]`)}
	after := map[string]json.RawMessage{"k": raw(`[2]`)}
	_, b, a := Diff(before, after)
	before["k"][1] = '7'
	after["k"][1] = '8'
	if string(b["k"]) != "[1]" || string(a["k"]) != "[2]" {
		t.Fatalf("Diff output shares memory with its input: %s %s", b["k"], a["k"])
	}
}

func TestCanonicalNumber(t *testing.T) {
	tests := map[string]string{
		"0":          "0",
		"-0.0e5":     "0",
		"1":          "1e0",
		"100":        "1e2",
		"1.50":       "15e-1",
		"-0.015E+2":  "-15e-1",
		"007":        "7e0",
		"1e0007":     "1e7",
		"123.456e-3": "123456e-6",
		"1eX":        "1eX",
	}
	for in, want := range tests {
		if got := canonicalNumber(in); got != want {
			t.Errorf("canonicalNumber(%q) = %q, want %q", in, got, want)
		}
	}
}
