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
	"encoding/json"
	"slices"
	"strconv"
	"time"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
)

// TimeFormat is how times are shown: RFC 3339 in UTC, as the server's views show them.
const TimeFormat = "2006-01-02T15:04:05.999999999Z07:00"

// EffectiveView is every flag's result for one context.
type EffectiveView struct {
	Namespace string            `json:"namespace"`
	At        string            `json:"at"`
	Context   evaluator.Context `json:"context"`
	Flags     []EffectiveFlag   `json:"flags"`
}

// EffectiveFlag is one flag's result for the context and where it comes from. The fields are
// those of the server's /v1/users/{id}/flags view, with the key and the local notes.
type EffectiveFlag struct {
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value,omitempty"`
	Enabled bool            `json:"enabled"`
	Variant string          `json:"variant,omitempty"`
	Reason  string          `json:"reason"`
	// Source is the evaluator's: default, kill-switch, role-gate, rollout, rule:NAME,
	// allow-list:user, allow-list:org, schedule:AT, user-override:NS/NAME or
	// device-override:NS/NAME.
	Source string `json:"source,omitempty"`
	// SourceKind is the resolution step: default, kill-switch, role-gate, allow-list,
	// rule, rollout, schedule, user-override, device-override or error.
	SourceKind string `json:"sourceKind"`
	// Hidden is true when the role gate decided: bulk evaluation leaves the flag out.
	Hidden       bool   `json:"hidden,omitempty"`
	ErrorCode    string `json:"errorCode,omitempty"`
	ErrorDetails string `json:"errorDetails,omitempty"`
	// Override is the override entry that decided the flag.
	Override *OverrideRef `json:"override,omitempty"`
	// Notes say where the server's live view may differ.
	Notes []string `json:"notes,omitempty"`
}

// OverrideRef is an override entry: its object, what it serves, until when and why (seed
// 001's getOverrideInfo).
type OverrideRef struct {
	Kind      evaluator.SubjectKind `json:"kind"`
	Namespace string                `json:"namespace"`
	Name      string                `json:"name"`
	CreatedAt string                `json:"createdAt"`
	ExpiresAt string                `json:"expiresAt,omitempty"`
	Reason    string                `json:"reason,omitempty"`
	// Mode is on (the flag's on value), off (its off value) or value (Value).
	Mode  string          `json:"mode"`
	Value json.RawMessage `json:"value,omitempty"`
}

func overrideRef(info *evaluator.OverrideInfo) *OverrideRef {
	ref := &OverrideRef{
		Kind: info.Kind, Namespace: info.Object.Namespace, Name: info.Object.Name,
		CreatedAt: info.CreatedAt.UTC().Format(TimeFormat), Reason: info.Reason, Mode: info.Mode, Value: info.Value,
	}
	if info.ExpiresAt != nil {
		ref.ExpiresAt = info.ExpiresAt.UTC().Format(TimeFormat)
	}
	return ref
}

// Effective evaluates every flag key of namespace ns for ctx, as the server's admin view
// does: the flag's result, the override entry that decided it, and the local notes.
func Effective(l *Loaded, ns string, ctx evaluator.Context, now time.Time) EffectiveView {
	view := EffectiveView{Namespace: ns, At: now.UTC().Format(TimeFormat), Context: ctx, Flags: []EffectiveFlag{}}
	n := l.Store.Namespace(ns)
	overrides := map[string]*OverrideRef{}
	for _, infos := range [][]evaluator.OverrideInfo{n.DeviceOverrides(ctx.DeviceID), n.UserOverrides(ctx.EffectiveUserID())} {
		for i := range infos {
			overrides[infos[i].Source+"\x00"+infos[i].Key] = overrideRef(&infos[i])
		}
	}
	for _, f := range l.NamespaceFlags(ns) {
		if f.ShadowedBy != "" {
			continue
		}
		if !f.Served {
			view.Flags = append(view.Flags, EffectiveFlag{
				Key: f.Key, Reason: evaluator.ReasonError.String(), SourceKind: "error",
				ErrorCode: evaluator.ErrorParse.String(), ErrorDetails: OneLine(f.CompileErr.Error()), Notes: f.Notes,
			})
			continue
		}
		res := n.Evaluate(ctx, f.Key)
		ef := EffectiveFlag{
			Key: f.Key, Value: res.Raw, Enabled: res.Enabled, Variant: res.Variant, Reason: res.Reason.String(),
			Source: res.Source, SourceKind: res.SourceKind(),
			Hidden: res.Hidden(),
			Notes:  f.Notes,
		}
		if res.ErrorCode != evaluator.ErrorNone {
			ef.ErrorCode, ef.ErrorDetails = res.ErrorCode.String(), res.ErrorMessage
		}
		ef.Override = overrides[res.Source+"\x00"+f.Key]
		view.Flags = append(view.Flags, ef)
	}
	return view
}

// FlagState is what a flag's kill switch and rollout are now, after the schedule steps at or
// before now: the rollout is "-" without one, else the percentage with a '%'.
func FlagState(spec *v1.FeatureFlagSpec, now time.Time) (enabled bool, rollout string) {
	enabled = spec.Enabled
	hasRollout, pct := spec.Rollout != nil, int32(0)
	if hasRollout {
		pct = spec.Rollout.Percentage
	}
	steps := slices.Clone(spec.Schedule)
	slices.SortStableFunc(steps, func(a, b v1.ScheduleStep) int { return a.At.Compare(b.At.Time) })
	for _, st := range steps {
		if st.At.After(now) {
			break
		}
		if st.Enabled != nil {
			enabled = *st.Enabled
		}
		if st.RolloutPercentage != nil {
			hasRollout, pct = true, *st.RolloutPercentage
		}
	}
	if !hasRollout {
		return enabled, "-"
	}
	return enabled, strconv.Itoa(int(pct)) + "%"
}

// OverrideCounts counts the user and device override entries for a flag that apply now, as
// the manager's status counts them.
func OverrideCounts(ns evaluator.Namespace, key string) (users, devices int) {
	for _, fo := range ns.FlagOverrides(key, nil, 0).Overrides {
		if fo.State != evaluator.OverrideApplies {
			continue
		}
		if fo.Kind == evaluator.SubjectUser {
			users++
		} else {
			devices++
		}
	}
	return users, devices
}
