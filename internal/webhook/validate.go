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
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
)

// The validating webhooks reject what the evaluator would refuse to serve. They fail closed
// (failurePolicy Fail): while they are down, flags and overrides cannot be created or have
// their spec changed. The controllers validate on their own as well, so an object admitted
// while the webhooks were not installed is never served wrongly.
//
// +kubebuilder:webhook:path=/validate-flagops-dev-v1alpha1-featureflag,mutating=false,failurePolicy=fail,sideEffects=None,groups=flagops.dev,resources=featureflags,verbs=create;update,versions=v1alpha1,name=vfeatureflag.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,serviceName=flagops-webhook-service,serviceNamespace=flagops-system
// +kubebuilder:webhook:path=/validate-flagops-dev-v1alpha1-userflagoverride,mutating=false,failurePolicy=fail,sideEffects=None,groups=flagops.dev,resources=userflagoverrides,verbs=create;update,versions=v1alpha1,name=vuserflagoverride.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,serviceName=flagops-webhook-service,serviceNamespace=flagops-system
// +kubebuilder:webhook:path=/validate-flagops-dev-v1alpha1-deviceflagoverride,mutating=false,failurePolicy=fail,sideEffects=None,groups=flagops.dev,resources=deviceflagoverrides,verbs=create;update,versions=v1alpha1,name=vdeviceflagoverride.flagops.dev,admissionReviewVersions=v1,timeoutSeconds=10,serviceName=flagops-webhook-service,serviceNamespace=flagops-system

// maxWarnings caps the warnings of one response.
const maxWarnings = 10

// maxShownValue caps the size of a bad value quoted in a message, in bytes of JSON.
const maxShownValue = 256

// validator holds what the validating webhooks share.
type validator struct {
	lookup lookup
	// now is the clock; nil means time.Now.
	now func() time.Time
}

func (v *validator) clock() time.Time {
	if v.now != nil {
		return v.now()
	}
	return time.Now()
}

func groupKind(kind controllers.Kind) schema.GroupKind {
	return schema.GroupKind{Group: v1.GroupVersion.Group, Kind: string(kind)}
}

// flagValidator validates FeatureFlags.
type flagValidator struct{ v *validator }

var _ admission.Validator[*v1.FeatureFlag] = flagValidator{}

// ValidateCreate checks that the spec compiles and that no other flag of the namespace has
// the key.
func (f flagValidator) ValidateCreate(ctx context.Context, flag *v1.FeatureFlag) (admission.Warnings, error) {
	warning, err := f.v.uniqueKey(ctx, flag)
	if err != nil {
		return nil, err
	}
	warnings, err := f.v.validateFlag(ctx, flag)
	if warning != "" {
		warnings = append(admission.Warnings{warning}, warnings...)
	}
	return warnings, err
}

// uniqueKey rejects a new flag whose key another flag of the namespace has. It reads the
// cache, so two creates in quick succession can both pass; the Syncer then serves the older
// and reports the other as DuplicateKey. For the same reason, a flag whose key cannot be
// checked is admitted with a warning.
func (v *validator) uniqueKey(ctx context.Context, flag *v1.FeatureFlag) (string, error) {
	key := adapt.FlagKey(flag)
	others, err := v.lookup.flagsWithKey(ctx, flag.Namespace, key)
	if err != nil {
		return fmt.Sprintf("unable to check that no other flag has the key %q (%v); if one has, the older flag is served and this one reports DuplicateKey", key, err), nil
	}
	for _, o := range others {
		if o.Name == flag.Name {
			continue
		}
		return "", apierrors.NewInvalid(groupKind(controllers.KindFeatureFlag), flag.Name, field.ErrorList{{
			Type: field.ErrorTypeDuplicate, Field: adapt.FlagKeyField(flag), BadValue: key,
			Detail: fmt.Sprintf("FeatureFlag %s/%s already has this key, so FeatureFlag %s/%s cannot: keys are unique in a namespace; "+
				"set another spec.key, or edit %s instead", o.Namespace, o.Name, flag.Namespace, flag.Name, o.Name),
		}})
	}
	return "", nil
}

// ValidateUpdate checks that a changed spec compiles. An update that leaves the spec alone
// (metadata, finalizers) is always admitted.
func (f flagValidator) ValidateUpdate(ctx context.Context, old, flag *v1.FeatureFlag) (admission.Warnings, error) {
	if equality.Semantic.DeepEqual(old.Spec, flag.Spec) {
		return nil, nil
	}
	return f.v.validateFlag(ctx, flag)
}

// ValidateDelete admits every deletion; see deletedByStamper for what happens on DELETE.
func (flagValidator) ValidateDelete(context.Context, *v1.FeatureFlag) (admission.Warnings, error) {
	return nil, nil
}

// validateFlag compiles the flag as the evaluator does, and warns about override values
// that the new spec would make invalid.
func (v *validator) validateFlag(ctx context.Context, flag *v1.FeatureFlag) (admission.Warnings, error) {
	compiled, err := evaluator.Compile(adapt.FlagKey(flag), adapt.FlagSpec(flag))
	if err != nil {
		return nil, apierrors.NewInvalid(groupKind(controllers.KindFeatureFlag), flag.Name, compileErrors(flag, err))
	}
	return v.overrideWarnings(ctx, flag, compiled), nil
}

// compileErrors turns the evaluator's field errors into API field errors, quoting the bad
// value when it is short.
func compileErrors(flag *v1.FeatureFlag, err error) field.ErrorList {
	var doc any
	if raw, mErr := json.Marshal(map[string]any{"spec": flag.Spec}); mErr == nil {
		_ = json.Unmarshal(raw, &doc)
	}
	var errs field.ErrorList
	for _, fe := range evaluator.FieldErrors(err) {
		if fe.Field == "key" {
			errs = append(errs, &field.Error{Type: field.ErrorTypeInvalid, Field: adapt.FlagKeyField(flag), BadValue: adapt.FlagKey(flag), Detail: fe.Detail})
			continue
		}
		val, found := valueAt(doc, fe.Field)
		switch {
		case !found:
			errs = append(errs, &field.Error{Type: field.ErrorTypeRequired, Field: fe.Field, BadValue: "", Detail: fe.Detail})
		default:
			errs = append(errs, &field.Error{Type: field.ErrorTypeInvalid, Field: fe.Field, BadValue: shown(val), Detail: fe.Detail})
		}
	}
	if len(errs) == 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec"), field.OmitValueType{}, err.Error()))
	}
	return errs
}

// shown returns v for a message, or OmitValueType when its JSON is too long to quote.
func shown(v any) any {
	raw, err := json.Marshal(v)
	if err != nil || len(raw) > maxShownValue {
		return field.OmitValueType{}
	}
	return v
}

// valueAt returns the value at a field path such as spec.rules[1].match[0].values[0] in a
// document decoded from JSON.
func valueAt(doc any, path string) (any, bool) {
	cur := doc
	for seg := range strings.SplitSeq(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		if name != "" {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[name]; !ok {
				return nil, false
			}
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				return nil, false
			}
			i, err := strconv.Atoi(idx)
			arr, isArr := cur.([]any)
			if err != nil || !isArr || i < 0 || i >= len(arr) {
				return nil, false
			}
			cur, rest = arr[i], strings.TrimPrefix(after, "[")
		}
	}
	return cur, true
}

// overrideWarnings lists the override entries whose values the compiled flag rejects. The
// change is admitted: the controllers report such entries in status.invalidKeys, and the
// evaluator ignores them until they are fixed.
func (v *validator) overrideWarnings(ctx context.Context, flag *v1.FeatureFlag, compiled *evaluator.Flag) admission.Warnings {
	var warnings []string
	key := adapt.FlagKey(flag)
	for _, kind := range []controllers.Kind{controllers.KindUserFlagOverride, controllers.KindDeviceFlagOverride} {
		overrides, err := v.lookup.overrides(ctx, kind, flag.Namespace, controllers.IndexFlagKey, key,
			func(o overrideView) bool { return o.hasKey(key) })
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("unable to check the %s objects that override this flag: %v", kind, err))
			continue
		}
		for _, o := range overrides {
			for i, e := range o.spec.Flags {
				if e.Key != key || !servesValue(e) {
					continue
				}
				if err := compiled.CheckValue(e.Value.Raw); err != nil {
					warnings = append(warnings, fmt.Sprintf("%s %q: spec.flags[%d].value does not match the new spec (%v); it is not served until it is fixed",
						kind, o.obj.GetName(), i, err))
				}
			}
		}
	}
	slices.Sort(warnings)
	if len(warnings) > maxWarnings {
		more := len(warnings) - maxWarnings
		warnings = append(warnings[:maxWarnings], fmt.Sprintf("and %d more override entries that do not match the new spec", more))
	}
	return warnings
}

// overrideValidator validates UserFlagOverrides or DeviceFlagOverrides.
type overrideValidator[T client.Object] struct{ v *validator }

var (
	_ admission.Validator[*v1.UserFlagOverride]   = overrideValidator[*v1.UserFlagOverride]{}
	_ admission.Validator[*v1.DeviceFlagOverride] = overrideValidator[*v1.DeviceFlagOverride]{}
)

// ValidateCreate checks every entry, the expiry and conflicts.
func (o overrideValidator[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	return nil, o.v.validateOverride(ctx, nil, viewOf(obj))
}

// ValidateUpdate checks what a spec change adds or changes. An update that leaves the spec
// alone (metadata, finalizers) is always admitted.
func (o overrideValidator[T]) ValidateUpdate(ctx context.Context, old, obj T) (admission.Warnings, error) {
	prev := viewOf(old)
	return nil, o.v.validateOverride(ctx, &prev, viewOf(obj))
}

// ValidateDelete admits every deletion; see deletedByStamper for what happens on DELETE.
func (overrideValidator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

// resolvedFlag is a flag as the override checks see it.
type resolvedFlag struct {
	// obj is the flag, nil when there is none.
	obj *v1.FeatureFlag
	// compiled is the compiled flag, nil when obj is nil, being deleted or does not compile.
	compiled *evaluator.Flag
	// err is why obj does not compile.
	err error
}

// servable reports whether the evaluator can serve entries for the flag: it exists and is
// not being deleted.
func (f resolvedFlag) servable() bool {
	return f.obj != nil && f.obj.DeletionTimestamp.IsZero()
}

// validateOverride checks an override: on create, all of it; on update, what the update adds
// or changes. Entries left as they were, in an override that was already served, are not
// checked again, so that a flag changed since cannot block unrelated edits; the controllers
// report such entries in status.invalidKeys.
func (v *validator) validateOverride(ctx context.Context, old *overrideView, o overrideView) error {
	if old != nil && equality.Semantic.DeepEqual(specOf(old.obj), specOf(o.obj)) {
		return nil
	}
	now := v.clock()
	ns := o.obj.GetNamespace()
	spec := field.NewPath("spec")
	var errs field.ErrorList

	if old == nil && o.spec.ExpiresAt != nil && !now.Before(o.spec.ExpiresAt.Time) {
		errs = append(errs, field.Invalid(spec.Child("expiresAt"), o.spec.ExpiresAt.UTC().Format(time.RFC3339),
			"must be in the future: an override that is already expired when it is created never applies"))
	}

	flags := map[string]resolvedFlag{}
	resolve := func(key string) (resolvedFlag, error) {
		if f, ok := flags[key]; ok {
			return f, nil
		}
		obj, err := v.lookup.flag(ctx, ns, key)
		if err != nil {
			return resolvedFlag{}, err
		}
		f := resolvedFlag{obj: obj}
		if f.servable() {
			f.compiled, f.err = evaluator.Compile(key, adapt.FlagSpec(obj))
		}
		flags[key] = f
		return f, nil
	}

	ratchet := old != nil && old.active(now)
	previous := map[string]v1.FlagOverrideEntry{}
	if old != nil {
		for _, e := range old.spec.Flags {
			previous[e.Key] = e
		}
	}
	for i, e := range o.spec.Flags {
		if prev, ok := previous[e.Key]; ratchet && ok && equality.Semantic.DeepEqual(prev, e) {
			continue
		}
		f, err := resolve(e.Key)
		if err != nil {
			return apierrors.NewInternalError(fmt.Errorf("unable to check spec.flags[%d]: %w", i, err))
		}
		if err := checkEntry(spec.Child("flags").Index(i), ns, e, f); err != nil {
			errs = append(errs, err)
		}
	}

	if o.active(now) {
		conflicts, err := v.conflicts(ctx, old, o, now, resolve)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		errs = append(errs, conflicts...)
	}

	if len(errs) > 0 {
		return apierrors.NewInvalid(groupKind(o.kind), o.obj.GetName(), errs)
	}
	return nil
}

// checkEntry checks one override entry against its flag.
func checkEntry(path *field.Path, ns string, e v1.FlagOverrideEntry, f resolvedFlag) *field.Error {
	switch {
	case f.obj == nil:
		return &field.Error{Type: field.ErrorTypeNotFound, Field: path.Child("key").String(), BadValue: e.Key,
			Detail: fmt.Sprintf("no FeatureFlag has the key %q in namespace %q", e.Key, ns)}
	case !f.servable():
		return &field.Error{Type: field.ErrorTypeNotFound, Field: path.Child("key").String(), BadValue: e.Key,
			Detail: fmt.Sprintf("the FeatureFlag with the key %q in namespace %q is being deleted", e.Key, ns)}
	case !servesValue(e):
		// The entry serves the flag's own on or off value, which the flag itself checks.
		return nil
	case f.err != nil:
		return field.Invalid(path.Child("value"), rawValue(e), fmt.Sprintf("flag %q: the value cannot be checked because the flag's spec does not compile; fix the flag first: %v", e.Key, f.err))
	}
	if err := f.compiled.CheckValue(e.Value.Raw); err != nil {
		return field.Invalid(path.Child("value"), rawValue(e), fmt.Sprintf("flag %q: %v", e.Key, err))
	}
	return nil
}

// rawValue returns an entry's value for a message.
func rawValue(e v1.FlagOverrideEntry) any {
	if e.Value == nil || len(e.Value.Raw) > maxShownValue {
		return field.OmitValueType{}
	}
	return json.RawMessage(e.Value.Raw)
}

// conflicts reports the entries of o whose (subject, key) another active override object of
// the same kind already sets. The evaluator would serve only one of them (the older), and
// report the other as lost in its status; the webhook rejects the newcomer instead. Entries
// that an update keeps, in an override that was already served, are not checked again.
func (v *validator) conflicts(ctx context.Context, old *overrideView, o overrideView, now time.Time,
	resolve func(string) (resolvedFlag, error)) (field.ErrorList, error) {
	ratchet := old != nil && old.active(now)
	var check []int
	for i, e := range o.spec.Flags {
		if !ratchet || !old.hasKey(e.Key) {
			check = append(check, i)
		}
	}
	if len(check) == 0 {
		return nil, nil
	}
	others, err := v.lookup.overrides(ctx, o.kind, o.obj.GetNamespace(), controllers.IndexSubject, o.subject,
		func(x overrideView) bool { return x.subject == o.subject })
	if err != nil {
		return nil, fmt.Errorf("unable to check for conflicting overrides: %w", err)
	}
	slices.SortFunc(others, func(a, b overrideView) int { return strings.Compare(a.obj.GetName(), b.obj.GetName()) })

	var errs field.ErrorList
	for _, i := range check {
		key := o.spec.Flags[i].Key
		for _, other := range others {
			if other.obj.GetName() == o.obj.GetName() || !other.active(now) {
				continue
			}
			competes, err := entryCompetes(other, key, resolve)
			if err != nil {
				return nil, fmt.Errorf("unable to check for conflicting overrides: %w", err)
			}
			if !competes {
				continue
			}
			errs = append(errs, &field.Error{
				Type:     field.ErrorTypeDuplicate,
				Field:    field.NewPath("spec", "flags").Index(i).Child("key").String(),
				BadValue: key,
				Detail: fmt.Sprintf("%s %q already overrides flag %q for %s %q; only one %s per %s and flag can apply: change or delete %q first",
					o.kind, other.obj.GetName(), key, o.subjectName(), o.subject, o.kind, o.subjectName(), other.obj.GetName()),
			})
			break
		}
	}
	return errs, nil
}

// entryCompetes reports whether other has an entry for key that the evaluator would serve.
// An entry whose value fails the flag is never served, so it does not compete.
func entryCompetes(other overrideView, key string, resolve func(string) (resolvedFlag, error)) (bool, error) {
	idx := slices.IndexFunc(other.spec.Flags, func(e v1.FlagOverrideEntry) bool { return e.Key == key })
	if idx < 0 {
		return false, nil
	}
	f, err := resolve(key)
	if err != nil {
		return false, err
	}
	if !f.servable() {
		// The newcomer's own entry is rejected for the missing flag already.
		return false, nil
	}
	e := other.spec.Flags[idx]
	if f.compiled != nil && servesValue(e) && f.compiled.CheckValue(e.Value.Raw) != nil {
		return false, nil
	}
	return true, nil
}
