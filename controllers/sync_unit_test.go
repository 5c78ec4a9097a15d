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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

func TestAppliedVersionReflects(t *testing.T) {
	applied := appliedVersion{uid: "u-1", resourceVersion: "10", generation: 2}
	deleting := metav1.NewTime(time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC))
	tests := []struct {
		name    string
		applied appliedVersion
		meta    metav1.ObjectMeta
		want    bool
	}{
		{"same resourceVersion", applied, metav1.ObjectMeta{UID: "u-1", ResourceVersion: "10", Generation: 2}, true},
		{"status or metadata change: same generation", applied, metav1.ObjectMeta{UID: "u-1", ResourceVersion: "11", Generation: 2}, true},
		{"spec change", applied, metav1.ObjectMeta{UID: "u-1", ResourceVersion: "12", Generation: 3}, false},
		{"another object with the same name", applied, metav1.ObjectMeta{UID: "u-2", ResourceVersion: "10", Generation: 2}, false},
		{"being deleted", applied, metav1.ObjectMeta{UID: "u-1", ResourceVersion: "10", Generation: 2, DeletionTimestamp: &deleting}, false},
		{"no generation (not from an API server): only the resourceVersion counts",
			appliedVersion{uid: "u-1", resourceVersion: "10"}, metav1.ObjectMeta{UID: "u-1", ResourceVersion: "11"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &v1.UserFlagOverride{ObjectMeta: tt.meta}
			if got := tt.applied.reflects(obj); got != tt.want {
				t.Errorf("reflects = %v, want %v", got, tt.want)
			}
			if got := versionOf(obj).reflects(obj); got != obj.DeletionTimestamp.IsZero() {
				t.Errorf("the version of an object reflects it: %v, want %v unless it is being deleted", got, obj.DeletionTimestamp.IsZero())
			}
		})
	}

	t.Run("Syncer.reflects reads the version applied per kind and name", func(t *testing.T) {
		s := NewSyncer(nil, nil)
		nn := types.NamespacedName{Namespace: "a", Name: "o"}
		s.applied[objKey{KindUserFlagOverride, nn}] = applied
		obj := &v1.UserFlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "o", UID: "u-1", ResourceVersion: "10", Generation: 2}}
		if !s.reflects(KindUserFlagOverride, obj) {
			t.Error("the applied object is not reflected")
		}
		if s.reflects(KindDeviceFlagOverride, obj) {
			t.Error("an object of another kind with the same name is reflected")
		}
	})
}
