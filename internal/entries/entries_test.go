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

package entries

import (
	"encoding/json"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		// spec is the object's spec, in JSON.
		spec string
		want []string
		// wantTypes are the error types, in order, when given.
		wantTypes []field.ErrorType
	}{
		{name: "valid entries", spec: `{"flags":[{"key":"a","value":1},{"key":"b","enabled":false},{"key":"c","value":{"x":null},"enabled":true}]}`},
		{name: "a null value", spec: `{"flags":[{"key":"a","value":null}]}`,
			want:      []string{"spec.flags[0].value: null does not clear an override; remove the entry instead"},
			wantTypes: []field.ErrorType{field.ErrorTypeInvalid}},
		{name: "a null value beside enabled", spec: `{"flags":[{"key":"a","value":true},{"key":"b","value":null,"enabled":true}]}`,
			want: []string{"spec.flags[1].value: null does not clear an override; remove the entry instead"}},
		{name: "a key alone", spec: `{"flags":[{"key":"a"}]}`,
			want:      []string{"spec.flags[0]: " + DetailKeyOnly},
			wantTypes: []field.ErrorType{field.ErrorTypeRequired}},
		{name: "a key with a null enabled", spec: `{"flags":[{"key":"a","enabled":null}]}`,
			want: []string{"spec.flags[0]: " + DetailKeyOnly}},
		{name: "a repeated key", spec: `{"flags":[{"key":"a","value":1},{"key":"x","value":1},{"key":"b","value":1},{"key":"x","value":2}]}`,
			want:      []string{"spec.flags[3].key: duplicate of spec.flags[1].key"},
			wantTypes: []field.ErrorType{field.ErrorTypeDuplicate}},
		{name: "a key three times names the first each time", spec: `{"flags":[{"key":"x","value":1},{"key":"x","value":2},{"key":"x","value":3}]}`,
			want: []string{"spec.flags[1].key: duplicate of spec.flags[0].key", "spec.flags[2].key: duplicate of spec.flags[0].key"}},
		{name: "a null value and a repeated key in one entry", spec: `{"flags":[{"key":"x","value":1},{"key":"x","value":null}]}`,
			want: []string{"spec.flags[1].value: null does not clear an override; remove the entry instead", "spec.flags[1].key: duplicate of spec.flags[0].key"}},
		{name: "no spec", spec: `null`},
		{name: "no flags", spec: `{}`},
		{name: "flags not a list", spec: `{"flags":{"key":"a"}}`},
		{name: "entries that are not objects, keys that are not strings", spec: `{"flags":["a",{"key":1,"value":1},{"key":1,"value":2}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var spec any
			if err := json.Unmarshal([]byte(tc.spec), &spec); err != nil {
				t.Fatal(err)
			}
			obj := map[string]any{"kind": "UserFlagOverride"}
			if spec != nil {
				obj["spec"] = spec
			}
			errs := Check(obj)
			var got []string
			var types []field.ErrorType
			for _, e := range errs {
				got = append(got, e.Error())
				types = append(types, e.Type)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Check() = %q\nwant %q", got, tc.want)
			}
			if tc.wantTypes != nil && !slices.Equal(types, tc.wantTypes) {
				t.Errorf("types = %v, want %v", types, tc.wantTypes)
			}
		})
	}
}
