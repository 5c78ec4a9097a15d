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
	"context"
	"encoding/json"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

func TestLastManager(t *testing.T) {
	at := func(s int) *metav1.Time { return &metav1.Time{Time: time.Unix(int64(s), 0)} }
	tests := []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    string
	}{
		{name: "none", want: "unknown"},
		{name: "latest wins", entries: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl", Time: at(1)}, {Manager: "argocd-controller", Time: at(5)}, {Manager: "helm", Time: at(3)},
		}, want: "argocd-controller"},
		{name: "own writes, status and untimed entries are skipped", entries: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl", Time: at(1)},
			{Manager: FieldOwner, Time: at(9)},
			{Manager: "status-writer", Subresource: "status", Time: at(8)},
			{Manager: "untimed"},
		}, want: "kubectl"},
		{name: "only own writes", entries: []metav1.ManagedFieldsEntry{{Manager: FieldOwner, Time: at(1)}}, want: "unknown"},
		{name: "same time breaks ties by name", entries: []metav1.ManagedFieldsEntry{
			{Manager: "a", Time: at(2)}, {Manager: "b", Time: at(2)},
		}, want: "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastManager(tt.entries); got != tt.want {
				t.Errorf("lastManager() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestActorsOf(t *testing.T) {
	stored := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "stored", ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, Time: &metav1.Time{Time: time.Unix(10, 0)}},
	}}}
	actors := Actors{APIReader: stubReader{stored}}
	tests := []struct {
		name string
		obj  *v1.FeatureFlag
		want string
	}{
		{name: "stamped by the webhook", obj: &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x",
			Annotations: map[string]string{v1.AnnotationChangedBy: "alice"}}}, want: "alice"},
		{name: "falls back to managedFields read without the cache", obj: &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "stored"}}, want: "kubectl-client-side-apply"},
		{name: "unknown when the object cannot be read", obj: &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gone"}}, want: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := actors.Of(context.Background(), KindFeatureFlag, tt.obj).Username; got != tt.want {
				t.Errorf("Of() = %q, want %q", got, tt.want)
			}
		})
	}

	deleted := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x", Annotations: map[string]string{
		v1.AnnotationChangedBy: "alice", v1.AnnotationDeletedBy: "bob"}}}
	if got := actors.OfDeletion(context.Background(), KindFeatureFlag, deleted).Username; got != "bob" {
		t.Errorf("OfDeletion() = %q, want the deleter bob", got)
	}
	if got := actors.Of(context.Background(), KindFeatureFlag, deleted).Username; got != "alice" {
		t.Errorf("Of() = %q, want the last modifier alice", got)
	}
	deleted.Annotations = map[string]string{v1.AnnotationChangedBy: "alice"}
	if got := actors.OfDeletion(context.Background(), KindFeatureFlag, deleted).Username; got != "alice" {
		t.Errorf("OfDeletion() without deleted-by = %q, want the last modifier alice", got)
	}
}

// stubReader serves one FeatureFlag, and NotFound for anything else.
type stubReader struct{ flag *v1.FeatureFlag }

func (r stubReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if key != client.ObjectKeyFromObject(r.flag) {
		return apierrors.NewNotFound(schema.GroupResource{Group: "flagops.dev", Resource: "featureflags"}, key.Name)
	}
	r.flag.DeepCopyInto(obj.(*v1.FeatureFlag))
	return nil
}

func (stubReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

func TestOverrideValues(t *testing.T) {
	tests := []struct {
		name string
		spec v1.FlagOverrideSpec
		want map[string]string
	}{
		{name: "defaults are recorded", spec: v1.FlagOverrideSpec{Flags: []v1.FlagOverrideEntry{{Key: "a.b", Enabled: ptr.To(true)}}},
			want: map[string]string{"a.b": `{"enabled":true}`, auditKeyEnabled: `true`, auditKeyOnExpiry: `"Delete"`}},
		{name: "every field", spec: v1.FlagOverrideSpec{
			Enabled: ptr.To(false), Reason: "why", OnExpiry: v1.OnExpiryRetain,
			ExpiresAt: &metav1.Time{Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
			Flags:     []v1.FlagOverrideEntry{{Key: "a.b", Value: js(map[string]int{"n": 1}), Enabled: ptr.To(true)}},
		}, want: map[string]string{"a.b": `{"enabled":true,"value":{"n":1}}`, auditKeyEnabled: `false`, auditKeyOnExpiry: `"Retain"`,
			auditKeyReason: `"why"`, auditKeyExpiresAt: `"2030-01-02T03:04:05Z"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := overrideValues(&tt.spec)
			if len(got) != len(tt.want) {
				t.Fatalf("overrideValues() = %s, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if !audit.JSONEqual(got[k], json.RawMessage(v)) {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}

func TestFlagValuesRecordsTheSwitch(t *testing.T) {
	got := flagValues(&v1.FeatureFlag{Spec: v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean}})
	if string(got["enabled"]) != "false" || string(got["type"]) != `"Boolean"` {
		t.Errorf("flagValues() = %s", got)
	}
}

func TestScheduleState(t *testing.T) {
	at := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	f := &v1.FeatureFlag{Spec: v1.FeatureFlagSpec{
		Type: v1.FlagTypeString, Value: js("a"), Rollout: &v1.Rollout{Percentage: 5},
		Schedule: []v1.ScheduleStep{
			{At: at, Enabled: ptr.To(true)},
			{At: metav1.NewTime(at.Add(time.Hour)), RolloutPercentage: ptr.To[int32](50), Value: js("b")},
		},
	}}
	tests := []struct {
		name      string
		through   int
		wantState string
	}{
		{name: "before any step", through: -1, wantState: `{"enabled":false,"rollout.percentage":5,"value":"a"}`},
		{name: "after the first step", through: 0, wantState: `{"enabled":true,"rollout.percentage":5,"value":"a"}`},
		{name: "after both steps", through: 1, wantState: `{"enabled":true,"rollout.percentage":50,"value":"b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustJSON(stateThrough(f, tt.through))
			if !audit.JSONEqual(got, json.RawMessage(tt.wantState)) {
				t.Errorf("stateThrough(%d) = %s, want %s", tt.through, got, tt.wantState)
			}
		})
	}
	changed, _, a := audit.Diff(stateThrough(f, 0).values(), stateThrough(f, 1).values())
	if got := describeChange(changed, a); got != `rollout.percentage=50, value="b"` {
		t.Errorf("describeChange() = %q", got)
	}
	if got := describeChange(nil, nil); got != "no change" {
		t.Errorf("describeChange(nil) = %q", got)
	}
}

func TestSetupNeedsStoreAndSink(t *testing.T) {
	if _, err := Setup(context.Background(), nil, Options{}); err == nil {
		t.Error("Setup without a store and a sink succeeded")
	}
}

func TestWrapOverrideRejectsOtherKinds(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("wrapOverride(FeatureFlag) did not panic")
		}
	}()
	wrapOverride(&v1.FeatureFlag{})
}
