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

package adapt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/utils/ptr"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

var (
	t0   = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	t1   = t0.Add(time.Hour)
	meta = metav1.ObjectMeta{Namespace: "shop", Name: "checkout.layout", UID: "uid-1", CreationTimestamp: metav1.NewTime(t0)}
)

func js(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

func TestFlagSpec(t *testing.T) {
	tests := []struct {
		name string
		in   v1.FeatureFlagSpec
		want evaluator.FlagSpec
	}{
		{
			name: "minimal boolean",
			in:   v1.FeatureFlagSpec{Type: v1.FlagTypeBoolean},
			want: evaluator.FlagSpec{Type: evaluator.TypeBoolean},
		},
		{
			name: "every field",
			in: v1.FeatureFlagSpec{
				Type:          v1.FlagTypeString,
				Description:   "not part of the model",
				Enabled:       true,
				Value:         js(`"sidebar"`),
				OffValue:      js(`"classic"`),
				Schema:        js(`{"type":"string"}`),
				AllowedRoles:  []string{"user", "admin"},
				AllowList:     &v1.AllowList{Users: []string{"u1"}, Orgs: []string{"o1"}},
				Rules:         []v1.Rule{{Name: "r1", Match: []v1.Condition{{Attribute: "email", Operator: v1.OperatorEndsWith, Values: []string{"@x.dev"}}}, Value: js(`"single"`)}},
				Rollout:       &v1.Rollout{Percentage: 25, BucketBy: "orgId"},
				Schedule:      []v1.ScheduleStep{{At: metav1.NewTime(t1), Enabled: ptr.To(true), RolloutPercentage: ptr.To[int32](50), Value: js(`"wide"`)}},
				DeviceClasses: []string{"phone"},
			},
			want: evaluator.FlagSpec{
				Type:          evaluator.TypeString,
				Enabled:       true,
				Value:         json.RawMessage(`"sidebar"`),
				OffValue:      json.RawMessage(`"classic"`),
				Schema:        json.RawMessage(`{"type":"string"}`),
				AllowedRoles:  []string{"user", "admin"},
				AllowList:     &evaluator.AllowList{Users: []string{"u1"}, Orgs: []string{"o1"}},
				Rules:         []evaluator.Rule{{Name: "r1", Match: []evaluator.Condition{{Attribute: "email", Operator: evaluator.OpEndsWith, Values: []string{"@x.dev"}}}, Value: json.RawMessage(`"single"`)}},
				Rollout:       &evaluator.Rollout{Percentage: 25, BucketBy: "orgId"},
				Schedule:      []evaluator.ScheduleStep{{At: t1, Enabled: ptr.To(true), RolloutPercentage: ptr.To[int32](50), Value: json.RawMessage(`"wide"`)}},
				DeviceClasses: []string{"phone"},
			},
		},
		{
			name: "empty raw JSON is no value",
			in:   v1.FeatureFlagSpec{Type: v1.FlagTypeObject, Value: &apiextensionsv1.JSON{}},
			want: evaluator.FlagSpec{Type: evaluator.TypeObject},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FlagSpec(&v1.FeatureFlag{ObjectMeta: meta, Spec: tt.in})
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FlagSpec() =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	spec := v1.FlagOverrideSpec{
		ExpiresAt: &metav1.Time{Time: t1},
		Reason:    "pilot",
		Flags: []v1.FlagOverrideEntry{
			{Key: "a.flag", Enabled: ptr.To(false)},
			{Key: "b.flag", Value: js(`{"n":1}`)},
		},
	}
	wantEntries := []evaluator.OverrideEntry{
		{Key: "a.flag", Enabled: ptr.To(false)},
		{Key: "b.flag", Value: json.RawMessage(`{"n":1}`)},
	}
	tests := []struct {
		name string
		got  evaluator.Override
		want evaluator.Override
	}{
		{
			name: "user override, enabled unset means enabled",
			got:  UserOverride(&v1.UserFlagOverride{ObjectMeta: meta, Spec: v1.UserFlagOverrideSpec{UserID: "user-42", FlagOverrideSpec: spec}}),
			want: evaluator.Override{Kind: evaluator.SubjectUser, SubjectID: "user-42", Namespace: "shop", Name: "checkout.layout",
				UID: "uid-1", CreatedAt: t0, Enabled: true, ExpiresAt: &t1, Reason: "pilot", Entries: wantEntries},
		},
		{
			name: "device override, disabled",
			got: func() evaluator.Override {
				s := spec
				s.Enabled = ptr.To(false)
				return DeviceOverride(&v1.DeviceFlagOverride{ObjectMeta: meta, Spec: v1.DeviceFlagOverrideSpec{DeviceID: "tablet-1", FlagOverrideSpec: s}})
			}(),
			want: evaluator.Override{Kind: evaluator.SubjectDevice, SubjectID: "tablet-1", Namespace: "shop", Name: "checkout.layout",
				UID: "uid-1", CreatedAt: t0, Enabled: false, ExpiresAt: &t1, Reason: "pilot", Entries: wantEntries},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got\n%#v\nwant\n%#v", tt.got, tt.want)
			}
		})
	}
}

// TestNoAliasing checks that a converted model does not share memory with the source object,
// which belongs to an informer cache.
func TestNoAliasing(t *testing.T) {
	f := &v1.FeatureFlag{ObjectMeta: meta, Spec: v1.FeatureFlagSpec{
		Type: v1.FlagTypeString, Value: js(`"a"`), AllowedRoles: []string{"user"},
		Rules: []v1.Rule{{Name: "r", Match: []v1.Condition{{Attribute: "x", Operator: v1.OperatorIn, Values: []string{"1"}}}}},
	}}
	got := FlagSpec(f)
	f.Spec.Value.Raw[1] = 'b'
	f.Spec.AllowedRoles[0] = "admin"
	f.Spec.Rules[0].Match[0].Values[0] = "2"
	if string(got.Value) != `"a"` || got.AllowedRoles[0] != "user" || got.Rules[0].Match[0].Values[0] != "1" {
		t.Errorf("the converted spec changed with its source: %+v", got)
	}

	exp := metav1.NewTime(t1)
	o := &v1.UserFlagOverride{ObjectMeta: meta, Spec: v1.UserFlagOverrideSpec{UserID: "u", FlagOverrideSpec: v1.FlagOverrideSpec{
		ExpiresAt: &exp, Flags: []v1.FlagOverrideEntry{{Key: "k", Value: js(`1`), Enabled: ptr.To(true)}},
	}}}
	ov := UserOverride(o)
	o.Spec.ExpiresAt.Time = t0
	o.Spec.Flags[0].Value.Raw[0] = '2'
	*o.Spec.Flags[0].Enabled = false
	if !ov.ExpiresAt.Equal(t1) || string(ov.Entries[0].Value) != `1` || !*ov.Entries[0].Enabled {
		t.Errorf("the converted override changed with its source: %+v", ov)
	}
}

// TestSamples loads every sample in config/samples, applies it to a store and checks that
// the evaluator serves it as the samples' comments say.
func TestSamples(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	decode := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer().Decode
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "flagops_*.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("found %d samples (err %v), want at least 6", len(files), err)
	}
	sort.Strings(files)

	const ns = "shop"
	var ops []evaluator.Op
	var flags []string
	type overrideRef struct {
		kind evaluator.SubjectKind
		name string
	}
	var overrides []overrideRef
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := decode(data, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		switch o := obj.(type) {
		case *v1.FeatureFlag:
			o.Namespace = ns
			ops = append(ops, UpsertFlag(o))
			flags = append(flags, o.Name)
		case *v1.UserFlagOverride:
			o.Namespace = ns
			ops = append(ops, evaluator.UpsertOverride(UserOverride(o)))
			overrides = append(overrides, overrideRef{evaluator.SubjectUser, o.Name})
		case *v1.DeviceFlagOverride:
			o.Namespace = ns
			ops = append(ops, evaluator.UpsertOverride(DeviceOverride(o)))
			overrides = append(overrides, overrideRef{evaluator.SubjectDevice, o.Name})
		default:
			t.Fatalf("%s: unexpected kind %T", file, obj)
		}
	}

	store := evaluator.NewStore(evaluator.WithClock(evaluator.ClockFunc(func() time.Time { return t0 })))
	snap, _, err := store.Apply(ops...)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, key := range flags {
		if err := snap.FlagError(ns, key); err != nil {
			t.Errorf("sample flag %s does not compile: %v", key, err)
		}
	}
	for _, ref := range overrides {
		st, ok := snap.OverrideStatus(ref.kind, ns, ref.name)
		if !ok || len(st.Invalid) > 0 || len(st.Applied) == 0 {
			t.Errorf("sample override %s: status %+v (found %v), want every entry applied", ref.name, st, ok)
		}
	}

	h := store.Namespace(ns)
	tests := []struct {
		name       string
		ctx        evaluator.Context
		key        string
		wantValue  any
		wantSource string
	}{
		{"kill switch off for everyone", evaluator.Context{UserID: "someone"}, "billing.enabled", false, evaluator.SourceKillSwitch},
		{"allow-listed staff", evaluator.Context{UserID: "staff-ada"}, "billing.enabled", true, evaluator.SourceAllowListUser},
		{"user override beats the kill switch", evaluator.Context{UserID: "user-42"}, "billing.enabled", true, "user-override:shop/pilot-user-42"},
		{"object config", evaluator.Context{UserID: "someone"}, "billing.free_tier_limits", map[string]any{"maxStudents": 1.0, "historyLimit": 5.0}, evaluator.SourceDefault},
		{"object config by rule", evaluator.Context{UserID: "someone", Attributes: map[string]any{"orgType": "school"}}, "billing.free_tier_limits",
			map[string]any{"maxStudents": 30.0, "historyLimit": 50.0}, "rule:education-orgs"},
		{"string rule", evaluator.Context{UserID: "someone", Role: "user", Attributes: map[string]any{"email": "ada@flagops.dev"}}, "checkout.layout", "single-page", "rule:staff-preview"},
		{"device override beats user override", evaluator.Context{UserID: "user-42", Role: "user", DeviceID: "tablet-7f3a", DeviceClass: "tablet"}, "checkout.layout", "single-page", "device-override:shop/qa-tablet-7"},
		{"schedule not yet reached", evaluator.Context{UserID: "someone"}, "beta.new_dashboard", false, evaluator.SourceKillSwitch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.Evaluate(tt.ctx, tt.key)
			if !reflect.DeepEqual(r.Value, tt.wantValue) || r.Source != tt.wantSource {
				t.Errorf("Evaluate(%s) = %v from %q, want %v from %q (%+v)", tt.key, r.Value, r.Source, tt.wantValue, tt.wantSource, r)
			}
		})
	}
}

func TestFlagKey(t *testing.T) {
	tests := []struct {
		name, objName, specKey string
		wantKey, wantField     string
	}{
		{name: "the name", objName: "billing.enabled", wantKey: "billing.enabled", wantField: "metadata.name"},
		{name: "spec.key", objName: "beta.new-dashboard", specKey: "beta.new_dashboard", wantKey: "beta.new_dashboard", wantField: "spec.key"},
		{name: "spec.key equal to the name", objName: "a.b", specKey: "a.b", wantKey: "a.b", wantField: "spec.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &v1.FeatureFlag{ObjectMeta: metav1.ObjectMeta{Name: tt.objName}, Spec: v1.FeatureFlagSpec{Key: tt.specKey, Type: v1.FlagTypeBoolean}}
			if got := FlagKey(f); got != tt.wantKey {
				t.Errorf("FlagKey = %q, want %q", got, tt.wantKey)
			}
			if got := FlagKeyField(f); got != tt.wantField {
				t.Errorf("FlagKeyField = %q, want %q", got, tt.wantField)
			}
			f.Namespace = "shop"
			store := evaluator.NewStore()
			if _, _, err := store.Apply(UpsertFlag(f)); err != nil {
				t.Fatal(err)
			}
			if r := store.Evaluate("shop", evaluator.Context{}, tt.wantKey); r.ErrorCode != evaluator.ErrorNone {
				t.Errorf("UpsertFlag does not serve the key %q: %+v", tt.wantKey, r)
			}
		})
	}
}
