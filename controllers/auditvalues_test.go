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
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
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
		{name: "the last spec writer wins over a later metadata writer", entries: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl", Time: at(1), FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:enabled":{}}}`)},
			{Manager: "labeller", Time: at(5), FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{}}}`)},
		}, want: "kubectl"},
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
	keys, err := stamp.ParseKeys([]byte("unit-test-stamp-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	// flag returns a flag at generation gen stamped for alice's write of spec.
	flag := func(name string, gen int64, spec v1.FeatureFlagSpec, stampedSpec v1.FeatureFlagSpec) *v1.FeatureFlag {
		f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "uid-1", Generation: gen}, Spec: stampedSpec}
		hash, err := SpecHash(f)
		if err != nil {
			t.Fatal(err)
		}
		f.Annotations = map[string]string{
			v1.AnnotationChangedBy:      "alice",
			v1.AnnotationChangedByStamp: keys.Sign(stamp.ForWrite(string(KindFeatureFlag), "ns", name, "uid-1", gen, hash, "alice")),
		}
		f.Spec = spec
		return f
	}
	on := v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean, Enabled: true}
	off := v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean}
	renamed := flag("stored", 1, on, on)
	renamed.Name = "other"
	tests := []struct {
		name   string
		actors Actors
		obj    *v1.FeatureFlag
		want   audit.Actor
	}{
		{name: "a valid create stamp", actors: Actors{Keys: keys}, obj: flag("x", 1, on, on), want: audit.Actor{Username: "alice", Verified: true}},
		{name: "a valid update stamp", actors: Actors{Keys: keys}, obj: flag("x", 4, on, on), want: audit.Actor{Username: "alice", Verified: true}},
		{name: "a stamp for an earlier spec", actors: Actors{APIReader: stubReader{stored}, Keys: keys}, obj: flag("stored", 4, off, on),
			want: audit.Actor{Username: "kubectl-client-side-apply", Claimed: "alice"}},
		{name: "a stamp copied to another object", actors: Actors{APIReader: stubReader{stored}, Keys: keys}, obj: renamed,
			want: audit.Actor{Username: "unknown", Claimed: "alice"}},
		{name: "no keys verify nothing", actors: Actors{APIReader: stubReader{stored}}, obj: flag("stored", 1, on, on),
			want: audit.Actor{Username: "kubectl-client-side-apply", Claimed: "alice"}},
		{name: "a name without a stamp falls back to managedFields read without the cache", actors: Actors{APIReader: stubReader{stored}, Keys: keys},
			obj:  &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "stored", Annotations: map[string]string{v1.AnnotationChangedBy: "mallory"}}},
			want: audit.Actor{Username: "kubectl-client-side-apply", Claimed: "mallory"}},
		{name: "managedFields on the object itself", actors: Actors{Keys: keys},
			obj:  &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x", ManagedFields: stored.ManagedFields}},
			want: audit.Actor{Username: "kubectl-client-side-apply"}},
		{name: "unknown when the object cannot be read", actors: Actors{APIReader: stubReader{stored}, Keys: keys},
			obj:  &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gone"}},
			want: audit.Actor{Username: "unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, req := tt.actors.Of(context.Background(), KindFeatureFlag, tt.obj)
			if !reflect.DeepEqual(got, tt.want) || req != nil {
				t.Errorf("Of() = %+v, %+v, want %+v and no request", got, req, tt.want)
			}
		})
	}
}

func TestActorsOfDeletion(t *testing.T) {
	keys, err := stamp.ParseKeys([]byte("unit-test-stamp-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "x", UID: "uid-1", ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, Time: &metav1.Time{Time: time.Unix(10, 0)}},
	}}
	deleted := func(uid, user, signedUser string) *v1.UserFlagOverride {
		o := &v1.UserFlagOverride{ObjectMeta: *meta.DeepCopy()}
		o.Annotations = map[string]string{
			v1.AnnotationChangedBy:      "carol",
			v1.AnnotationDeletedBy:      user,
			v1.AnnotationDeletedByStamp: keys.Sign(stamp.ForDelete(string(KindUserFlagOverride), "ns", "x", uid, signedUser)),
		}
		return o
	}
	tests := []struct {
		name string
		obj  *v1.UserFlagOverride
		want audit.Actor
	}{
		{name: "a valid stamp", obj: deleted("uid-1", "bob", "bob"), want: audit.Actor{Username: "bob", Verified: true}},
		{name: "a forged name", obj: deleted("uid-1", "mallory", "bob"), want: audit.Actor{Username: "kubectl", Claimed: "mallory"}},
		{name: "a stamp of an earlier object of the same name", obj: deleted("uid-0", "bob", "bob"), want: audit.Actor{Username: "kubectl", Claimed: "bob"}},
		{name: "no deleted-by: never the last modifier's name", obj: &v1.UserFlagOverride{ObjectMeta: *meta.DeepCopy()},
			want: audit.Actor{Username: "kubectl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, req := Actors{Keys: keys}.OfDeletion(context.Background(), KindUserFlagOverride, tt.obj)
			if !reflect.DeepEqual(got, tt.want) || req != nil {
				t.Errorf("OfDeletion() = %+v, %+v, want %+v and no request", got, req, tt.want)
			}
		})
	}
	if _, err := SpecHash(&corev1.ConfigMap{}); err == nil {
		t.Error("SpecHash(ConfigMap) succeeded, want an error")
	}
}

// TestActorsRequest: the console's request is recorded only with a verified actor whose
// stamp covers it as written in the request annotation; a request written, changed or
// removed by hand makes the actor unverified, and gives no request.
func TestActorsRequest(t *testing.T) {
	keys, err := stamp.ParseKeys([]byte("unit-test-stamp-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	console := &audit.Request{Route: "PUT /flags/{name}", SourceIP: "203.0.113.7", UserAgent: "Mozilla/5.0"}
	other := &audit.Request{Route: "PUT /flags/{name}", SourceIP: "198.51.100.1", UserAgent: "Mozilla/5.0"}
	meta := metav1.ObjectMeta{Namespace: "ns", Name: "x", UID: "uid-1", Generation: 3, ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, Time: &metav1.Time{Time: time.Unix(10, 0)}},
	}}
	// object returns an override changed and deleted by alice, with stamps signed for the
	// signed request and request annotations holding written ("" for none).
	object := func(signed *audit.Request, written string) *v1.UserFlagOverride {
		o := &v1.UserFlagOverride{ObjectMeta: *meta.DeepCopy(), Spec: v1.UserFlagOverrideSpec{UserID: "u"}}
		hash, err := SpecHash(o)
		if err != nil {
			t.Fatal(err)
		}
		o.Annotations = map[string]string{
			v1.AnnotationChangedBy: "alice",
			v1.AnnotationChangedByStamp: keys.Sign(stamp.ForWrite(string(KindUserFlagOverride), "ns", "x", "uid-1", 3, hash, "alice").
				WithRequest(signed)),
			v1.AnnotationDeletedBy:      "alice",
			v1.AnnotationDeletedByStamp: keys.Sign(stamp.ForDelete(string(KindUserFlagOverride), "ns", "x", "uid-1", "alice").WithRequest(signed)),
		}
		if written != "" {
			o.Annotations[v1.AnnotationChangedByRequest] = written
			o.Annotations[v1.AnnotationDeletedByRequest] = written
		}
		return o
	}
	verified := audit.Actor{Username: "alice", Verified: true}
	unverified := audit.Actor{Username: "kubectl", Claimed: "alice"}
	tests := []struct {
		name      string
		obj       *v1.UserFlagOverride
		wantActor audit.Actor
		wantReq   *audit.Request
	}{
		{name: "signed and written", obj: object(console, RequestAnnotation(console)), wantActor: verified, wantReq: console},
		{name: "no request", obj: object(nil, ""), wantActor: verified},
		{name: "written by hand next to a stamp without one", obj: object(nil, RequestAnnotation(console)), wantActor: unverified},
		{name: "changed by hand", obj: object(console, RequestAnnotation(other)), wantActor: unverified},
		{name: "removed by hand", obj: object(console, ""), wantActor: unverified},
		{name: "not JSON", obj: object(console, "PUT /flags/{name} from 203.0.113.7"), wantActor: unverified},
		{name: "the same fields in another JSON form", obj: object(console,
			`{ "userAgent": "Mozilla/5.0", "sourceIP": "203.0.113.7", "route": "PUT /flags/{name}" }`), wantActor: verified, wantReq: console},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actors := Actors{Keys: keys}
			actor, req := actors.Of(context.Background(), KindUserFlagOverride, tt.obj)
			if !reflect.DeepEqual(actor, tt.wantActor) || !reflect.DeepEqual(req, tt.wantReq) {
				t.Errorf("Of() = %+v, %+v, want %+v, %+v", actor, req, tt.wantActor, tt.wantReq)
			}
			actor, req = actors.OfDeletion(context.Background(), KindUserFlagOverride, tt.obj)
			if !reflect.DeepEqual(actor, tt.wantActor) || !reflect.DeepEqual(req, tt.wantReq) {
				t.Errorf("OfDeletion() = %+v, %+v, want %+v, %+v", actor, req, tt.wantActor, tt.wantReq)
			}
		})
	}
}

func TestRequestAnnotation(t *testing.T) {
	tests := []struct {
		name string
		in   *audit.Request
		want string
	}{
		{name: "none", in: nil, want: ""},
		{name: "empty", in: &audit.Request{}, want: ""},
		{name: "some fields", in: &audit.Request{Route: "DELETE /overrides/{name}", SourceIP: "2001:db8::1"},
			want: `{"route":"DELETE /overrides/{name}","sourceIP":"2001:db8::1"}`},
		{name: "no HTML escaping", in: &audit.Request{UserAgent: "a<b>&c"}, want: `{"userAgent":"a<b>&c"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RequestAnnotation(tt.in); got != tt.want {
				t.Errorf("RequestAnnotation = %s, want %s", got, tt.want)
			}
		})
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
