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

package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestAddToScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatalf("AddToScheme: %v", err)
	}
	tests := []struct {
		obj  runtime.Object
		kind string
	}{
		{&FeatureFlag{}, "FeatureFlag"},
		{&FeatureFlagList{}, "FeatureFlagList"},
		{&UserFlagOverride{}, "UserFlagOverride"},
		{&UserFlagOverrideList{}, "UserFlagOverrideList"},
		{&DeviceFlagOverride{}, "DeviceFlagOverride"},
		{&DeviceFlagOverrideList{}, "DeviceFlagOverrideList"},
		{&AuditCheckpoint{}, "AuditCheckpoint"},
		{&AuditCheckpointList{}, "AuditCheckpointList"},
		// metav1.AddToGroupVersion: the options types that list and watch requests decode.
		{&metav1.ListOptions{}, "ListOptions"},
		{&metav1.WatchEvent{}, "WatchEvent"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			gvks, _, err := s.ObjectKinds(tc.obj)
			if err != nil {
				t.Fatalf("ObjectKinds: %v", err)
			}
			want := schema.GroupVersionKind{Group: "flagops.dev", Version: "v1alpha1", Kind: tc.kind}
			found := false
			for _, gvk := range gvks {
				found = found || gvk == want
			}
			if !found {
				t.Errorf("kinds %v, want %v among them", gvks, want)
			}
		})
	}
}
