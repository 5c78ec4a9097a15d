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
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

func TestStripForCache(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	managed := []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, Time: &at, FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{"f:team":{}}},"f:spec":{"f:enabled":{},"f:value":{}}}`)},
		{Manager: "labeller", Operation: metav1.ManagedFieldsOperationUpdate, Time: &at, FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{"f:tier":{}}}}`)},
		{Manager: "flagops-manager", Operation: metav1.ManagedFieldsOperationUpdate, Time: &at, Subresource: "status",
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:observedGeneration":{}}}`)},
	}
	wantManaged := []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply, Time: &at, FieldsType: "FieldsV1",
			FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)},
		{Manager: "labeller", Operation: metav1.ManagedFieldsOperationUpdate, Time: &at},
		{Manager: "flagops-manager", Operation: metav1.ManagedFieldsOperationUpdate, Time: &at, Subresource: "status"},
	}
	tests := []struct {
		name            string
		annotations     map[string]string
		wantAnnotations map[string]string
	}{
		{name: "no annotations", annotations: nil, wantAnnotations: nil},
		{name: "last-applied dropped, others kept",
			annotations:     map[string]string{LastAppliedAnnotation: `{"big":"copy"}`, v1.AnnotationChangedBy: "alice"},
			wantAnnotations: map[string]string{v1.AnnotationChangedBy: "alice"}},
		{name: "only others", annotations: map[string]string{"a": "b"}, wantAnnotations: map[string]string{"a": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Name: "f", Annotations: tt.annotations, ManagedFields: managed}}
			out, err := StripForCache(in)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*v1.FeatureFlag)
			if !reflect.DeepEqual(got.ManagedFields, wantManaged) {
				t.Errorf("managedFields = %v, want who wrote when, and whether they own spec fields: %v", got.ManagedFields, wantManaged)
			}
			if lastManager(got.ManagedFields) != "kubectl" {
				t.Errorf("lastManager of the cached entries = %q, want kubectl", lastManager(got.ManagedFields))
			}
			if len(got.Annotations) != len(tt.wantAnnotations) {
				t.Fatalf("annotations = %v, want %v", got.Annotations, tt.wantAnnotations)
			}
			for k, v := range tt.wantAnnotations {
				if got.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, got.Annotations[k], v)
				}
			}
		})
	}

	t.Run("non-objects pass through", func(t *testing.T) {
		tomb := cache.DeletedFinalStateUnknown{Key: "ns/f"}
		out, err := StripForCache(tomb)
		if err != nil || out != any(tomb) {
			t.Errorf("StripForCache(tombstone) = %v, %v", out, err)
		}
	})
}
