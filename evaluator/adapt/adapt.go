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

// Package adapt converts the flagops API types (flagops.dev/v1alpha1) into the evaluator's
// model. It is the only package under evaluator/ that imports the API; the evaluator core
// and its serving packages stay free of Kubernetes dependencies.
//
// The conversions copy every slice and raw JSON value, so the results never alias the
// objects of an informer cache.
package adapt

import (
	"encoding/json"
	"slices"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// FlagKey returns a FeatureFlag's key: spec.key, or metadata.name when spec.key is empty.
func FlagKey(f *v1.FeatureFlag) string {
	if f.Spec.Key != "" {
		return f.Spec.Key
	}
	return f.Name
}

// FlagKeyField names the field that sets a FeatureFlag's key, for messages: spec.key, or
// metadata.name when spec.key is empty.
func FlagKeyField(f *v1.FeatureFlag) string {
	if f.Spec.Key != "" {
		return "spec.key"
	}
	return "metadata.name"
}

// FlagSpec converts a FeatureFlag's spec into the evaluator's FlagSpec. The flag key is
// FlagKey and its flag set is the object's namespace.
func FlagSpec(f *v1.FeatureFlag) evaluator.FlagSpec {
	s := f.Spec
	out := evaluator.FlagSpec{
		Type:          evaluator.FlagType(s.Type),
		Enabled:       s.Enabled,
		Value:         raw(s.Value),
		OffValue:      raw(s.OffValue),
		Schema:        raw(s.Schema),
		AllowedRoles:  slices.Clone(s.AllowedRoles),
		DeviceClasses: slices.Clone(s.DeviceClasses),
	}
	if s.AllowList != nil {
		out.AllowList = &evaluator.AllowList{
			Users: slices.Clone(s.AllowList.Users),
			Orgs:  slices.Clone(s.AllowList.Orgs),
		}
	}
	for _, r := range s.Rules {
		rule := evaluator.Rule{Name: r.Name, Value: raw(r.Value)}
		for _, c := range r.Match {
			rule.Match = append(rule.Match, evaluator.Condition{
				Attribute: c.Attribute,
				Operator:  evaluator.Operator(c.Operator),
				Values:    slices.Clone(c.Values),
			})
		}
		out.Rules = append(out.Rules, rule)
	}
	if s.Rollout != nil {
		out.Rollout = &evaluator.Rollout{Percentage: s.Rollout.Percentage, BucketBy: s.Rollout.BucketBy}
	}
	for _, st := range s.Schedule {
		step := evaluator.ScheduleStep{At: st.At.Time, Value: raw(st.Value)}
		if st.Enabled != nil {
			step.Enabled = new(bool)
			*step.Enabled = *st.Enabled
		}
		if st.RolloutPercentage != nil {
			step.RolloutPercentage = new(int32)
			*step.RolloutPercentage = *st.RolloutPercentage
		}
		out.Schedule = append(out.Schedule, step)
	}
	return out
}

// UpsertFlag returns the store operation that applies a FeatureFlag.
func UpsertFlag(f *v1.FeatureFlag) evaluator.Op {
	return evaluator.UpsertFlag(f.Namespace, FlagKey(f), FlagSpec(f))
}

// UserOverride converts a UserFlagOverride into the evaluator's Override.
func UserOverride(o *v1.UserFlagOverride) evaluator.Override {
	return override(evaluator.SubjectUser, o.Spec.UserID, o.Namespace, o.Name, string(o.UID),
		o.CreationTimestamp.Time, &o.Spec.FlagOverrideSpec)
}

// DeviceOverride converts a DeviceFlagOverride into the evaluator's Override.
func DeviceOverride(o *v1.DeviceFlagOverride) evaluator.Override {
	return override(evaluator.SubjectDevice, o.Spec.DeviceID, o.Namespace, o.Name, string(o.UID),
		o.CreationTimestamp.Time, &o.Spec.FlagOverrideSpec)
}

func override(kind evaluator.SubjectKind, subject, ns, name, uid string, created time.Time, s *v1.FlagOverrideSpec) evaluator.Override {
	out := evaluator.Override{
		Kind:      kind,
		SubjectID: subject,
		Namespace: ns,
		Name:      name,
		UID:       uid,
		CreatedAt: created,
		// The API defaults enabled to true; an object read without defaulting (a YAML file)
		// means the same.
		Enabled: s.Enabled == nil || *s.Enabled,
		Reason:  s.Reason,
	}
	if s.ExpiresAt != nil {
		t := s.ExpiresAt.Time
		out.ExpiresAt = &t
	}
	for _, e := range s.Flags {
		entry := evaluator.OverrideEntry{Key: e.Key, Value: raw(e.Value)}
		if e.Enabled != nil {
			entry.Enabled = new(bool)
			*entry.Enabled = *e.Enabled
		}
		out.Entries = append(out.Entries, entry)
	}
	return out
}

// raw copies a JSON value; nil stays nil (no value).
func raw(j *apiextensionsv1.JSON) json.RawMessage {
	if j == nil || len(j.Raw) == 0 {
		return nil
	}
	return json.RawMessage(slices.Clone(j.Raw))
}
