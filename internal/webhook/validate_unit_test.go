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
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
)

// builderIndexer registers the controllers' real field indexes on a fake client builder.
type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	i.b.WithIndex(obj, field, fn)
	return nil
}

var unitNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// unitValidator returns a validator whose cache is a fake client with the controllers'
// indexes (or none), and whose API reader is a fake client holding the same objects.
func unitValidator(t *testing.T, indexed bool, apiFuncs interceptor.Funcs, objs ...client.Object) *validator {
	t.Helper()
	s := unitScheme(t)
	cb := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...)
	if indexed {
		if err := controllers.SetupIndexes(context.Background(), builderIndexer{cb}); err != nil {
			t.Fatal(err)
		}
	}
	api := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithInterceptorFuncs(apiFuncs).Build()
	return &validator{lookup: lookup{cache: cb.Build(), api: api}, now: func() time.Time { return unitNow }}
}

func expectErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("err = %v\nwant it to contain %q", err, p)
		}
	}
}

func expectOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("err = %v, want none", err)
	}
}

func TestOverrideValidation(t *testing.T) {
	ctx := context.Background()
	deleting := boolFlag("shop", "beta.leaving")
	deleting.Finalizers = []string{v1.FinalizerAudit}
	deleting.DeletionTimestamp = &metav1.Time{Time: unitNow}
	broken := limitsFlag("shop", "billing.broken")
	broken.Spec.Value = js(map[string]any{"maxStudents": 1000})
	objs := []client.Object{boolFlag("shop", "beta.x"), limitsFlag("shop", "billing.limits"), deleting, broken}

	for _, indexed := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexed=%v", indexed), func(t *testing.T) {
			v := unitValidator(t, indexed, interceptor.Funcs{}, objs...)
			uv := overrideValidator[*v1.UserFlagOverride]{v}

			_, err := uv.ValidateCreate(ctx, userOverride("shop", "a", "u", on("beta.leaving")))
			expectErr(t, err, `spec.flags[0].key: Not found: "beta.leaving": the FeatureFlag with the key "beta.leaving" in namespace "shop" is being deleted`)

			_, err = uv.ValidateCreate(ctx, userOverride("shop", "a", "u", valued("billing.broken", map[string]any{"maxStudents": 1})))
			expectErr(t, err, `spec.flags[0].value: Invalid value: {"maxStudents":1}: flag "billing.broken": the value cannot be checked because the flag's spec does not compile; fix the flag first: spec.value`)

			// An entry that serves the flag's own values is admitted even so.
			_, err = uv.ValidateCreate(ctx, userOverride("shop", "a", "u", on("billing.broken")))
			expectOK(t, err)

			// A null value counts as no value.
			_, err = uv.ValidateCreate(ctx, userOverride("shop", "a", "u", v1.FlagOverrideEntry{Key: "billing.limits", Value: js(nil), Enabled: ptrTo(true)}))
			expectOK(t, err)
		})
	}
}

func TestOverrideConflicts(t *testing.T) {
	ctx := context.Background()
	expired := userOverride("shop", "expired", "u", on("beta.x"))
	expired.Spec.ExpiresAt = &metav1.Time{Time: unitNow.Add(-time.Minute)}
	leaving := userOverride("shop", "leaving", "u", on("beta.x"))
	leaving.Finalizers = []string{v1.FinalizerAudit}
	leaving.DeletionTimestamp = &metav1.Time{Time: unitNow}
	badValue := userOverride("shop", "bad-value", "u", valued("billing.limits", map[string]any{"maxStudents": 999}))
	objs := []client.Object{boolFlag("shop", "beta.x"), limitsFlag("shop", "billing.limits"), expired, leaving, badValue}

	for _, indexed := range []bool{true, false} {
		t.Run(fmt.Sprintf("indexed=%v", indexed), func(t *testing.T) {
			v := unitValidator(t, indexed, interceptor.Funcs{}, objs...)
			uv := overrideValidator[*v1.UserFlagOverride]{v}

			// Expired, deleted and invalid entries do not compete.
			_, err := uv.ValidateCreate(ctx, userOverride("shop", "new", "u", on("beta.x"), valued("billing.limits", map[string]any{"maxStudents": 5})))
			expectOK(t, err)

			// An active one does.
			active := userOverride("shop", "active", "u", on("beta.x"))
			v2 := unitValidator(t, indexed, interceptor.Funcs{}, append(objs, active)...)
			_, err = overrideValidator[*v1.UserFlagOverride]{v2}.ValidateCreate(ctx, userOverride("shop", "new", "u", on("beta.x")))
			expectErr(t, err, `spec.flags[0].key: Duplicate value: "beta.x": UserFlagOverride "active" already overrides flag "beta.x" for user "u"`)

			// A disabled newcomer competes with nobody.
			disabled := userOverride("shop", "new", "u", on("beta.x"))
			disabled.Spec.Enabled = ptrTo(false)
			_, err = overrideValidator[*v1.UserFlagOverride]{v2}.ValidateCreate(ctx, disabled)
			expectOK(t, err)

			// Enabling it later is checked.
			enabled := disabled.DeepCopy()
			enabled.Spec.Enabled = ptrTo(true)
			_, err = overrideValidator[*v1.UserFlagOverride]{v2}.ValidateUpdate(ctx, disabled, enabled)
			expectErr(t, err, `Duplicate value: "beta.x"`)
		})
	}
}

func TestOverrideUpdateRatchet(t *testing.T) {
	ctx := context.Background()
	v := unitValidator(t, true, interceptor.Funcs{}, boolFlag("shop", "beta.x"))
	uv := overrideValidator[*v1.UserFlagOverride]{v}

	old := userOverride("shop", "a", "u", on("beta.gone"), on("beta.x"))
	old.Spec.ExpiresAt = &metav1.Time{Time: unitNow.Add(time.Hour)}

	// Unchanged spec: admitted whatever it says.
	_, err := uv.ValidateUpdate(ctx, old, old.DeepCopy())
	expectOK(t, err)

	// An unrelated change to an active override: the unknown flag is not checked again.
	changed := old.DeepCopy()
	changed.Spec.Reason = "new reason"
	_, err = uv.ValidateUpdate(ctx, old, changed)
	expectOK(t, err)

	// The expiry is only checked on create.
	past := old.DeepCopy()
	past.Spec.ExpiresAt = &metav1.Time{Time: unitNow.Add(-time.Hour)}
	_, err = uv.ValidateUpdate(ctx, old, past)
	expectOK(t, err)

	// An override that was not served (expired) is checked in full when it is revived.
	expiredOld := past.DeepCopy()
	revived := old.DeepCopy()
	_, err = uv.ValidateUpdate(ctx, expiredOld, revived)
	expectErr(t, err, `spec.flags[0].key: Not found: "beta.gone"`)

	// Changing the broken entry is checked.
	edited := old.DeepCopy()
	edited.Spec.Flags[0].Enabled = ptrTo(false)
	_, err = uv.ValidateUpdate(ctx, old, edited)
	expectErr(t, err, `spec.flags[0].key: Not found: "beta.gone"`)

	// Deletions are always admitted.
	if _, err := uv.ValidateDelete(ctx, old); err != nil {
		t.Errorf("ValidateDelete: %v", err)
	}
}

func TestOverrideValidationLookupErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("api server unavailable")
	failGet := interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
		return boom
	}}
	failList := interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return boom }}

	// The cache misses (the flag is not in it), and the API server fails.
	v := unitValidator(t, true, failGet)
	_, err := overrideValidator[*v1.DeviceFlagOverride]{v}.ValidateCreate(ctx, deviceOverride("shop", "a", "d", on("beta.x")))
	expectErr(t, err, "Internal error occurred", "unable to check spec.flags[0]", "api server unavailable")
	if !apierrors.IsInternalError(err) {
		t.Errorf("want an internal error, got %v", err)
	}

	// No index in the cache, and the API server cannot list.
	v = unitValidator(t, false, failList, boolFlag("shop", "beta.x"))
	_, err = overrideValidator[*v1.DeviceFlagOverride]{v}.ValidateCreate(ctx, deviceOverride("shop", "a", "d", on("beta.x")))
	expectErr(t, err, "unable to check for conflicting overrides", "api server unavailable")

	// An update adds an entry whose flag cannot be read.
	other := deviceOverride("shop", "other", "d", on("beta.y"))
	flakyGet := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if key.Name == "beta.y" {
			return boom
		}
		return c.Get(ctx, key, obj, opts...)
	}}
	v = unitValidator(t, true, flakyGet, boolFlag("shop", "beta.x"), other)
	v.lookup.cache = fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(other).Build()
	existing := deviceOverride("shop", "mine", "d", on("beta.x"))
	updated := existing.DeepCopy()
	updated.Spec.Flags = append(updated.Spec.Flags, on("beta.y"))
	updated.Spec.Flags[1].Enabled = ptrTo(true)
	_, err = overrideValidator[*v1.DeviceFlagOverride]{v}.ValidateUpdate(ctx, existing, updated)
	expectErr(t, err, "unable to check spec.flags[1]", "api server unavailable")
}

func TestFlagValidation(t *testing.T) {
	ctx := context.Background()
	v := unitValidator(t, true, interceptor.Funcs{})
	fv := flagValidator{v}

	// An empty name (a flag key) is reported on metadata.name.
	_, err := fv.ValidateCreate(ctx, boolFlag("shop", ""))
	expectErr(t, err, `metadata.name: Invalid value: "": must not be empty`)

	// A missing required value is reported as required.
	noValue := stringFlag("shop", "checkout.layout", "")
	noValue.Spec.Value = nil
	_, err = fv.ValidateCreate(ctx, noValue)
	expectErr(t, err, "spec.value: Required value: required for String flags")

	// A long bad value is not quoted.
	long := stringFlag("shop", "checkout.layout", "sidebar")
	long.Spec.Rules = []v1.Rule{{Name: "r", Match: []v1.Condition{{Attribute: "a", Operator: v1.OperatorMatches, Values: []string{"(" + strings.Repeat("x", 300)}}}}}
	_, err = fv.ValidateCreate(ctx, long)
	expectErr(t, err, "spec.rules[0].match[0].values[0]: Invalid value: invalid RE2 pattern")

	// An update that leaves an invalid spec alone is admitted (metadata, finalizers).
	invalid := long.DeepCopy()
	relabelled := invalid.DeepCopy()
	relabelled.Labels = map[string]string{"team": "checkout"}
	if _, err := fv.ValidateUpdate(ctx, invalid, relabelled); err != nil {
		t.Errorf("metadata-only update: %v", err)
	}
	if _, err := fv.ValidateDelete(ctx, invalid); err != nil {
		t.Errorf("ValidateDelete: %v", err)
	}
}

func TestFlagValidationWarnings(t *testing.T) {
	ctx := context.Background()
	var objs []client.Object
	for i := range maxWarnings + 2 {
		objs = append(objs, userOverride("shop", fmt.Sprintf("user-%02d", i), fmt.Sprintf("u%d", i), valued("billing.limits", map[string]any{"maxStudents": 90})))
	}
	objs = append(objs,
		deviceOverride("shop", "device", "d", valued("billing.limits", map[string]any{"maxStudents": 90})),
		userOverride("shop", "fine", "v", valued("billing.limits", map[string]any{"maxStudents": 10})),
		userOverride("shop", "other-flag", "w", on("beta.x")))
	f := limitsFlag("shop", "billing.limits")
	f.Spec.Schema = js(map[string]any{"type": "object", "properties": map[string]any{"maxStudents": map[string]any{"type": "integer", "maximum": 50}}})

	v := unitValidator(t, true, interceptor.Funcs{}, objs...)
	warnings, err := flagValidator{v}.ValidateCreate(ctx, f)
	expectOK(t, err)
	if len(warnings) != maxWarnings+1 {
		t.Fatalf("got %d warnings, want %d: %q", len(warnings), maxWarnings+1, warnings)
	}
	if !strings.HasPrefix(warnings[0], `DeviceFlagOverride "device": spec.flags[0].value does not match the new spec`) {
		t.Errorf("first warning = %q", warnings[0])
	}
	if want := "and 3 more override entries that do not match the new spec"; warnings[maxWarnings] != want {
		t.Errorf("last warning = %q, want %q", warnings[maxWarnings], want)
	}

	// When the overrides cannot be listed, the change is admitted with a warning.
	boom := errors.New("api server unavailable")
	v = unitValidator(t, false, interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return boom }})
	warnings, err = flagValidator{v}.ValidateCreate(ctx, f)
	expectOK(t, err)
	if len(warnings) != 3 || !strings.Contains(warnings[0], `unable to check that no other flag has the key "billing.limits"`) ||
		!strings.Contains(warnings[1], "unable to check the") || !strings.Contains(warnings[1], "api server unavailable") {
		t.Errorf("warnings = %q", warnings)
	}
}

func TestValueAt(t *testing.T) {
	doc := map[string]any{"spec": map[string]any{
		"rules": []any{map[string]any{"match": []any{map[string]any{"values": []any{"a", "b"}}}}},
		"grid":  []any{[]any{1.0, 2.0}},
	}}
	tests := []struct {
		path  string
		want  any
		found bool
	}{
		{"spec.rules[0].match[0].values[1]", "b", true},
		{"spec.grid[0][1]", 2.0, true},
		{"spec.rules[1]", nil, false},
		{"spec.rules[x]", nil, false},
		{"spec.rules[0", nil, false},
		{"spec.missing", nil, false},
		{"spec.rules.name", nil, false},
		{"spec.grid[0][1].x", nil, false},
	}
	for _, tt := range tests {
		got, found := valueAt(doc, tt.path)
		if found != tt.found || (found && got != tt.want) {
			t.Errorf("valueAt(%q) = %v, %v; want %v, %v", tt.path, got, found, tt.want, tt.found)
		}
	}
}

func TestMessageHelpers(t *testing.T) {
	if got := shown(strings.Repeat("x", maxShownValue+1)); got != (field.OmitValueType{}) {
		t.Errorf("shown(long) = %v, want OmitValueType", got)
	}
	if got := shown(make(chan int)); got != (field.OmitValueType{}) {
		t.Errorf("shown(unmarshalable) = %v, want OmitValueType", got)
	}
	long := valued("k", strings.Repeat("x", maxShownValue))
	if got := rawValue(long); got != (field.OmitValueType{}) {
		t.Errorf("rawValue(long) = %v, want OmitValueType", got)
	}
	if got := (&validator{}).clock(); time.Since(got) > time.Minute {
		t.Errorf("default clock = %v, want about now", got)
	}
	if got := specOf(&metav1.PartialObjectMetadata{}); got != nil {
		t.Errorf("specOf(not a flagops object) = %v, want nil", got)
	}
	for name, fn := range map[string]func(){
		"viewOf":  func() { viewOf(&v1.FeatureFlag{}) },
		"viewsOf": func() { viewsOf(&v1.FeatureFlagList{}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s of a non-override did not panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestLookupFlagByKey(t *testing.T) {
	ctx := context.Background()
	keyed := func(name, key string, created int) *v1.FeatureFlag {
		f := boolFlag("shop", name)
		f.Spec.Key = key
		f.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, created, 0, time.UTC))
		return f
	}
	objs := []client.Object{
		boolFlag("shop", "by.name"),
		keyed("new-checkout", "newCheckout", 1),
		// The same key twice: the older is the one served.
		keyed("dup-young", "dup", 5), keyed("dup-old", "dup", 2),
		// Named like a key, but with another key.
		keyed("taken", "other", 1),
	}
	boom := errors.New("api server unavailable")
	tests := []struct {
		name    string
		indexed bool
		api     interceptor.Funcs
		key     string
		want    string // the object found, "" for none
		wantErr string
	}{
		{name: "from the cache", indexed: true, key: "newCheckout", want: "new-checkout"},
		{name: "from the cache, the older of two", indexed: true, key: "dup", want: "dup-old"},
		{name: "from the API by name", key: "by.name", want: "by.name"},
		{name: "from the API by listing", key: "newCheckout", want: "new-checkout"},
		{name: "from the API, the older of two", key: "dup", want: "dup-old"},
		{name: "a name that is not the key", key: "taken", want: ""},
		{name: "none", indexed: true, key: "nothing", want: ""},
		{name: "the API fails to get", key: "x", wantErr: "failed to get FeatureFlag shop/x: api server unavailable",
			api: interceptor.Funcs{Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
				return boom
			}}},
		{name: "the API fails to list", key: "x", wantErr: `failed to list the FeatureFlags of namespace "shop": api server unavailable`,
			api: interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return boom }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := unitValidator(t, tt.indexed, tt.api, objs...)
			f, err := v.lookup.flag(ctx, "shop", tt.key)
			if tt.wantErr != "" {
				expectErr(t, err, tt.wantErr)
				return
			}
			expectOK(t, err)
			got := ""
			if f != nil {
				got = f.Name
			}
			if got != tt.want {
				t.Errorf("flag(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}
