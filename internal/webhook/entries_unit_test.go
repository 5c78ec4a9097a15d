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

package webhook

import (
	"context"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestEntriesChecker(t *testing.T) {
	override := func(flags string) runtime.RawExtension {
		return runtime.RawExtension{Raw: []byte(`{"metadata":{"name":"pilot"},"spec":{"userId":"u","flags":` + flags + `}}`)}
	}
	good := override(`[{"key":"a","value":true}]`)
	null := override(`[{"key":"a","value":null}]`)
	tests := []struct {
		name      string
		req       func() (op admissionv1.Operation, kind string, obj, old runtime.RawExtension)
		wantAllow bool
		wantCode  int32
		want      string
		causes    []metav1.StatusCause
	}{
		{name: "create with a null value", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Create, "UserFlagOverride", null, runtime.RawExtension{}
		}, wantCode: http.StatusUnprocessableEntity,
			want:   `UserFlagOverride.flagops.dev "pilot" is invalid: spec.flags[0].value: null does not clear an override; remove the entry instead`,
			causes: []metav1.StatusCause{{Type: metav1.CauseTypeFieldValueInvalid, Field: "spec.flags[0].value", Message: "spec.flags[0].value: null does not clear an override; remove the entry instead"}}},
		{name: "two problems are listed together", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Create, "DeviceFlagOverride", override(`[{"key":"a","value":null},{"key":"a","value":1}]`), runtime.RawExtension{}
		}, wantCode: http.StatusUnprocessableEntity,
			want: `DeviceFlagOverride.flagops.dev "pilot" is invalid: [spec.flags[0].value: null does not clear an override; remove the entry instead, spec.flags[1].key: duplicate of spec.flags[0].key]`},
		{name: "update that changes the spec", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Update, "UserFlagOverride", null, good
		}, wantCode: http.StatusUnprocessableEntity, want: "spec.flags[0].value: null does not clear"},
		{name: "update that leaves the spec alone", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Update, "UserFlagOverride", null, null
		}, wantAllow: true},
		{name: "valid entries", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Create, "UserFlagOverride", good, runtime.RawExtension{}
		}, wantAllow: true},
		{name: "a FeatureFlag", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Create, "FeatureFlag", null, runtime.RawExtension{}
		}, wantAllow: true},
		{name: "undecodable object", req: func() (admissionv1.Operation, string, runtime.RawExtension, runtime.RawExtension) {
			return admissionv1.Create, "UserFlagOverride", runtime.RawExtension{Raw: []byte(`{`)}, runtime.RawExtension{}
		}, wantCode: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op, kind, obj, old := tc.req()
			req := request(op, kind, "alice", obj, old)
			req.Name = "pilot"
			resp := entriesChecker{}.Handle(context.Background(), req)
			if resp.Allowed != tc.wantAllow {
				t.Fatalf("allowed = %v, want %v (%+v)", resp.Allowed, tc.wantAllow, resp.Result)
			}
			if len(resp.Patch) != 0 || resp.PatchType != nil {
				t.Errorf("the webhook patched the object: %s", resp.Patch)
			}
			if tc.wantAllow {
				return
			}
			if resp.Result.Code != tc.wantCode {
				t.Errorf("code = %d, want %d", resp.Result.Code, tc.wantCode)
			}
			if !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("message = %q\nwant it to contain %q", resp.Result.Message, tc.want)
			}
			if tc.causes != nil {
				if resp.Result.Reason != metav1.StatusReasonInvalid || resp.Result.Details == nil || resp.Result.Details.Kind != kind {
					t.Fatalf("result = %+v, want reason Invalid with details for %s", resp.Result, kind)
				}
				if got := resp.Result.Details.Causes; len(got) != len(tc.causes) || got[0] != tc.causes[0] {
					t.Errorf("causes = %+v\nwant %+v", got, tc.causes)
				}
			}
		})
	}
}
