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

package flagadmin

import (
	"fmt"
	"strconv"
	"time"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// FlagChange is a change of one field of a FeatureFlag's spec: seed 003's master switch or
// rollout percentage, written as a merge patch of that field alone with the object's
// resourceVersion.
type FlagChange struct {
	// Field names the field, e.g. spec.enabled.
	Field string
	// Patch applies the change to spec and returns the merge patch of the spec.
	Patch func(spec *v1.FeatureFlagSpec) map[string]any
	// Same reports whether spec already says what the change sets.
	Same func(spec *v1.FeatureFlagSpec) bool
	// want is the field's value after the change, as FlagState shows it.
	want string
}

// SwitchChange turns the master switch (spec.enabled) on or off.
func SwitchChange(on bool) FlagChange {
	return FlagChange{
		Field: "spec.enabled",
		Patch: func(spec *v1.FeatureFlagSpec) map[string]any {
			spec.Enabled = on
			return map[string]any{"enabled": on}
		},
		Same: func(spec *v1.FeatureFlagSpec) bool { return spec.Enabled == on },
		want: strconv.FormatBool(on),
	}
}

// RolloutChange sets the rollout percentage (spec.rollout.percentage), keeping bucketBy.
func RolloutChange(percent int32) FlagChange {
	return FlagChange{
		Field: "spec.rollout.percentage",
		Patch: func(spec *v1.FeatureFlagSpec) map[string]any {
			if spec.Rollout == nil {
				spec.Rollout = &v1.Rollout{}
			}
			spec.Rollout.Percentage = percent
			return map[string]any{"rollout": map[string]any{"percentage": percent}}
		},
		Same: func(spec *v1.FeatureFlagSpec) bool { return spec.Rollout != nil && spec.Rollout.Percentage == percent },
		want: fmt.Sprintf("%d%%", percent),
	}
}

// ParsePercent reads a rollout percentage: a whole number from 0 to 100, with or without a
// '%'.
func ParsePercent(s string) (int32, bool) {
	if n := len(s); n > 0 && s[n-1] == '%' {
		s = s[:n-1]
	}
	p, err := strconv.ParseInt(s, 10, 32)
	if err != nil || p < 0 || p > 100 {
		return 0, false
	}
	return int32(p), true
}

// ScheduleDecides returns what a schedule step of f that has taken effect at now sets the
// changed field to, when that differs from the change: the change is then not what is
// served until a later step or a change of spec.schedule.
func (c FlagChange) ScheduleDecides(f *v1.FeatureFlag, now time.Time) (string, bool) {
	enabled, rollout := FlagState(&f.Spec, now)
	got := rollout
	if c.Field == "spec.enabled" {
		got = strconv.FormatBool(enabled)
	}
	return got, got != c.want
}
