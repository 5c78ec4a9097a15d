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

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator/adapt"
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

func TestServingTransform(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))
	gone := metav1.NewTime(at.Add(time.Hour))
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name: "o", Namespace: "team", UID: "u-1", ResourceVersion: "42", Generation: 3,
			CreationTimestamp: at, DeletionTimestamp: &gone,
			Labels:          map[string]string{"team": "a"},
			Annotations:     map[string]string{LastAppliedAnnotation: "{}", v1.AnnotationChangedBy: "alice"},
			Finalizers:      []string{"flagops.dev/audit"},
			OwnerReferences: []metav1.OwnerReference{{Name: "owner"}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Time: &at, FieldsType: "FieldsV1",
				FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:flags":{}}}`)}},
		}
	}
	wantMeta := metav1.ObjectMeta{Name: "o", Namespace: "team", UID: "u-1", ResourceVersion: "42", Generation: 3,
		CreationTimestamp: at, DeletionTimestamp: &gone}
	entries := v1.FlagOverrideSpec{Enabled: ptr.To(true), ExpiresAt: &gone, Reason: "beta",
		Flags: []v1.FlagOverrideEntry{{Key: "a", Value: &apiextensionsv1.JSON{Raw: []byte(`"x"`)}}, {Key: "b", Enabled: ptr.To(false)}}}
	overrideStatus := v1.FlagOverrideStatus{ObservedGeneration: 3, FlagCount: 2,
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}}
	tests := []struct {
		name string
		obj  client.Object
		// served is what the Syncer builds from the object; it must not change.
		served func(client.Object) any
	}{
		{name: "FeatureFlag",
			obj: &v1.FeatureFlag{ObjectMeta: meta(),
				Spec: v1.FeatureFlagSpec{Key: "checkout", Type: "boolean", Enabled: true,
					Value: &apiextensionsv1.JSON{Raw: []byte("true")}, AllowedRoles: []string{"admin"}},
				Status: v1.FeatureFlagStatus{ObservedGeneration: 3}},
			served: func(o client.Object) any {
				f := o.(*v1.FeatureFlag)
				return []any{adapt.FlagKey(f), adapt.FlagSpec(f)}
			}},
		{name: "UserFlagOverride",
			obj: &v1.UserFlagOverride{ObjectMeta: meta(),
				Spec: v1.UserFlagOverrideSpec{UserID: "alice", FlagOverrideSpec: entries}, Status: overrideStatus},
			served: func(o client.Object) any { return adapt.UserOverride(o.(*v1.UserFlagOverride)) }},
		{name: "DeviceFlagOverride",
			obj: &v1.DeviceFlagOverride{ObjectMeta: meta(),
				Spec: v1.DeviceFlagOverrideSpec{DeviceID: "d-1", FlagOverrideSpec: entries}, Status: overrideStatus},
			served: func(o client.Object) any { return adapt.DeviceOverride(o.(*v1.DeviceFlagOverride)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.served(tt.obj.DeepCopyObject().(client.Object))
			out, err := ServingTransform(tt.obj)
			if err != nil {
				t.Fatal(err)
			}
			got := out.(client.Object)
			if got := tt.served(got); !reflect.DeepEqual(got, want) {
				t.Errorf("served from the transformed object = %+v, want the same as from the original %+v", got, want)
			}
			var m *metav1.ObjectMeta
			var status any
			switch o := got.(type) {
			case *v1.FeatureFlag:
				m, status = &o.ObjectMeta, o.Status
			case *v1.UserFlagOverride:
				m, status = &o.ObjectMeta, o.Status
			case *v1.DeviceFlagOverride:
				m, status = &o.ObjectMeta, o.Status
			}
			if !reflect.DeepEqual(*m, wantMeta) {
				t.Errorf("metadata = %+v, want only what the Syncer reads: %+v", *m, wantMeta)
			}
			if !reflect.ValueOf(status).IsZero() {
				t.Errorf("status = %+v, want it dropped", status)
			}
		})
	}

	t.Run("other objects get StripForCache", func(t *testing.T) {
		cm := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "cm",
			Annotations: map[string]string{LastAppliedAnnotation: "{}", "a": "b"}}}
		out, err := ServingTransform(cm)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.(*metav1.PartialObjectMetadata).Annotations; !reflect.DeepEqual(got, map[string]string{"a": "b"}) {
			t.Errorf("annotations = %v, want the last-applied one dropped", got)
		}
	})
}
