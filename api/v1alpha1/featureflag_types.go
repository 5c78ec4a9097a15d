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
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// FlagType is the type of a flag's values.
// +kubebuilder:validation:Enum=Boolean;String;Number;Object
type FlagType string

const (
	// FlagTypeBoolean flags serve true when on and false when off.
	FlagTypeBoolean FlagType = "Boolean"
	// FlagTypeString flags serve JSON strings.
	FlagTypeString FlagType = "String"
	// FlagTypeNumber flags serve JSON numbers.
	FlagTypeNumber FlagType = "Number"
	// FlagTypeObject flags serve JSON objects, for typed configuration.
	FlagTypeObject FlagType = "Object"
)

// Operator compares a context attribute with a condition's values.
// +kubebuilder:validation:Enum=In;NotIn;StartsWith;EndsWith;Matches;Exists;GreaterThan;LessThan;SemVerAtLeast
type Operator string

const (
	// OperatorIn matches when the attribute equals one of the values.
	OperatorIn Operator = "In"
	// OperatorNotIn matches when the attribute is present and equals none of the values.
	OperatorNotIn Operator = "NotIn"
	// OperatorStartsWith matches when the attribute starts with one of the values.
	OperatorStartsWith Operator = "StartsWith"
	// OperatorEndsWith matches when the attribute ends with one of the values.
	OperatorEndsWith Operator = "EndsWith"
	// OperatorMatches matches when the attribute matches one of the values, as RE2 patterns.
	OperatorMatches Operator = "Matches"
	// OperatorExists matches when the attribute is present; it takes no values.
	OperatorExists Operator = "Exists"
	// OperatorGreaterThan matches when the attribute, as a number, is greater than the one value.
	OperatorGreaterThan Operator = "GreaterThan"
	// OperatorLessThan matches when the attribute, as a number, is less than the one value.
	OperatorLessThan Operator = "LessThan"
	// OperatorSemVerAtLeast matches when the attribute, as a semantic version, is at least the one value.
	OperatorSemVerAtLeast Operator = "SemVerAtLeast"
)

// Condition tests one context attribute.
// +kubebuilder:validation:XValidation:rule="self.operator == 'Exists' ? (!has(self.values) || size(self.values) == 0) : (has(self.values) && size(self.values) > 0)",message="values must be empty for the Exists operator and non-empty for every other operator",fieldPath=".values"
// +kubebuilder:validation:XValidation:rule="!(self.operator in ['GreaterThan', 'LessThan']) || (has(self.values) && size(self.values) == 1 && self.values[0].matches('^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$'))",message="GreaterThan and LessThan take exactly one value, a decimal number",fieldPath=".values"
// +kubebuilder:validation:XValidation:rule="self.operator != 'SemVerAtLeast' || (has(self.values) && size(self.values) == 1 && isSemver(self.values[0], true))",message="SemVerAtLeast takes exactly one value, a semantic version such as 1.4.0",fieldPath=".values"
type Condition struct {
	// attribute is the context attribute to test: targetingKey, userId, orgId, role,
	// deviceId, deviceClass, or the name of any free attribute of the evaluation context.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Attribute string `json:"attribute,omitempty"`

	// operator is how the attribute is compared with values: In, NotIn, StartsWith,
	// EndsWith, Matches (RE2), Exists, GreaterThan, LessThan or SemVerAtLeast.
	// +required
	Operator Operator `json:"operator,omitempty"`

	// values are compared with the attribute. Exists takes none; GreaterThan, LessThan and
	// SemVerAtLeast take exactly one; the others match when any value matches (NotIn: when
	// none does). A context without the attribute matches no condition: every operator,
	// NotIn included, is false for a missing attribute.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=1024
	Values []string `json:"values,omitempty"`
}

// Rule is a targeting rule: when every condition matches, the rule's value is served.
type Rule struct {
	// name identifies the rule, in results (source rule:<name>), events and audit records.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// match lists the conditions; all of them must match (logical AND).
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	Match []Condition `json:"match,omitempty"`

	// value is served when the rule matches. Omitted means the flag's on value.
	// It must match the flag's type and JSON Schema.
	// +optional
	Value *apiextensionsv1.JSON `json:"value,omitempty"`
}

// AllowList names principals that always get the flag's on value, even when the flag is
// disabled. Only role gating and overrides come before it.
type AllowList struct {
	// users are user IDs that always get the on value.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Users []string `json:"users,omitempty"`

	// orgs are organisation IDs that always get the on value.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Orgs []string `json:"orgs,omitempty"`
}

// Rollout serves the on value to a stable share of principals.
type Rollout struct {
	// percentage is the share of principals, 0 to 100, that get the on value. A principal's
	// bucket is the first 8 bytes of sha256(flagKey + "/" + principal), big-endian, modulo
	// 100; it is the same in every process.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage int32 `json:"percentage"` //nolint:kubeapilinter // requiredfields wants a pointer with omitempty for the valid zero value; the field is required and Go always sends it (no omitempty), so an explicit 0 (nobody) is never confused with unset.

	// bucketBy is the context attribute whose value is the principal. Omitted means userId,
	// falling back to orgId. A context without the attribute gets the off value.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	BucketBy string `json:"bucketBy,omitempty"`
}

// ScheduleStep changes the flag at a point in time. It takes effect for every evaluation
// at or after spec.schedule[].at. It must change at least one of enabled,
// rolloutPercentage and value.
// +kubebuilder:validation:MinProperties=2
type ScheduleStep struct {
	// at is the instant (RFC 3339) at which the step takes effect.
	// +required
	// +kubebuilder:validation:Format=date-time
	At metav1.Time `json:"at"` //nolint:kubeapilinter // requiredfields wants a pointer with omitempty for the valid zero value ({}), but a zero metav1.Time is sent as null, which the API server drops and then rejects as a missing required field (test/crd), so a pointer would add nothing.

	// enabled sets the master switch from this step on.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// rolloutPercentage sets rollout.percentage from this step on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	RolloutPercentage *int32 `json:"rolloutPercentage,omitempty"`

	// value sets the on value from this step on. It must match the flag's type and schema.
	// +optional
	Value *apiextensionsv1.JSON `json:"value,omitempty"`
}

// FeatureFlagSpec defines a feature flag. The flag key is spec.key, or the object's
// metadata.name when spec.key is omitted.
type FeatureFlagSpec struct {
	// key is the flag key that applications evaluate, for example beta.new_dashboard or
	// newCheckout: letters, digits, '.', '_' and '-', starting with a letter or a digit, at
	// most 253 characters. Omitted means metadata.name. Keys are unique within a namespace
	// and cannot be changed after creation. Name the object after the key where the key is
	// a valid object name, and otherwise lowercase it and replace '_' with '-' (for example
	// beta.new-dashboard for beta.new_dashboard, new-checkout for newCheckout).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	Key string `json:"key,omitempty"`

	// type is the type of every value the flag serves: Boolean, String, Number or Object.
	// It cannot be changed after creation.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable; create a new flag instead"
	Type FlagType `json:"type,omitempty"`

	// description says what the flag controls: 1 to 1024 characters.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// enabled is the master switch and kill switch. When false the off value is served to
	// everyone except allow-listed principals and override subjects. New flags ship disabled.
	// +optional
	// +kubebuilder:default=false
	Enabled bool `json:"enabled,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value; the API server defaults the field to false, so false and omitted mean the same.

	// value is the on value. Boolean flags must omit it or set true; every other type
	// requires it, and it must match type and schema.
	// +optional
	Value *apiextensionsv1.JSON `json:"value,omitempty"`

	// offValue is served when the flag is off. Boolean flags imply false. For other types it
	// is optional, and omitted means "no value": the caller's default applies.
	// +optional
	OffValue *apiextensionsv1.JSON `json:"offValue,omitempty"`

	// schema is a JSON Schema (draft 2020-12) that value, offValue, rule values, schedule
	// values and every override value must satisfy.
	// +optional
	Schema *apiextensionsv1.JSON `json:"schema,omitempty"`

	// allowedRoles lists the roles (for example guest, user, admin) that may see the flag
	// on. Other roles get the off value, overrides do not apply to them, and bulk
	// evaluation leaves the flag out. Omitted means every role. A context without a role
	// is a guest: list guest to let signed-out users see the flag.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	AllowedRoles []string `json:"allowedRoles,omitempty"`

	// allowList names users and organisations that always get the on value.
	// +optional
	AllowList *AllowList `json:"allowList,omitempty"`

	// rules are targeting rules, tried in order; the first match wins.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=50
	Rules []Rule `json:"rules,omitempty"`

	// rollout serves the on value to a stable percentage of principals.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty"`

	// schedule lists changes that take effect at set times, in strictly increasing order of at.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:XValidation:rule="self.all(i, s, i == 0 || self[i - 1].at < s.at)",message="schedule steps must be in strictly increasing order of at"
	Schedule []ScheduleStep `json:"schedule,omitempty"`

	// deviceClasses lists the device classes eligible for overrides and device push: on a
	// device (a context with a deviceId or deviceClass), device and user overrides of this
	// flag apply only when its deviceClass is listed.
	// Omitted means phone, tablet and laptop (chargers are excluded).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	DeviceClasses []string `json:"deviceClasses,omitempty"`
}

// FeatureFlagStatus is the observed state of a FeatureFlag.
type FeatureFlagStatus struct {
	// conditions hold Ready, the summary of whether the spec is served as written, and
	// Stalled while it cannot be (a spec that does not compile, or a key that an older flag
	// has); at most 16.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the metadata.generation that the status describes. 0, the
	// default, means that the manager has not observed the object yet: GitOps tools then read
	// it as in progress (kstatus compares it with metadata.generation).
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value; 0 and omitted mean the same, not observed yet. 0 is the default that the API server serves until the manager writes status, so that kstatus compares it with metadata.generation; the manager only ever writes a generation (at least 1).

	// userOverrides is the number of active UserFlagOverride entries for this flag.
	// +optional
	UserOverrides int32 `json:"userOverrides,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value; 0 and omitted both mean no active override, as the Users column shows.

	// deviceOverrides is the number of active DeviceFlagOverride entries for this flag.
	// +optional
	DeviceOverrides int32 `json:"deviceOverrides,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value; 0 and omitted both mean no active override, as the Devices column shows.

	// nextScheduleAt is when the next schedule step takes effect, if any.
	// +optional
	NextScheduleAt *metav1.Time `json:"nextScheduleAt,omitempty"`

	// lastScheduleApplied is the at of the last schedule step recorded (event and audit
	// record) as applied.
	// +optional
	LastScheduleApplied *metav1.Time `json:"lastScheduleApplied,omitempty"`

	// audited is deprecated: it is left by earlier versions, read once into the object's
	// AuditCheckpoint, and then removed.
	// +optional
	Audited *AuditState `json:"audited,omitempty"`
}

// FeatureFlag is a typed feature flag. Its key is spec.key, or metadata.name when spec.key
// is omitted.
//
// +kubebuilder:object:root=true
// +kubebuilder:validation:XValidation:rule="(has(self.spec.key) ? self.spec.key : self.metadata.name) == (has(oldSelf.spec.key) ? oldSelf.spec.key : oldSelf.metadata.name)",message="the flag key is immutable (spec.key, or metadata.name when spec.key is omitted); create a new flag instead",fieldPath=".spec.key"
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fflag,categories=flagops
// +kubebuilder:printcolumn:name="Key",type=string,JSONPath=`.spec.key`,description="The flag key when it differs from the name; empty means metadata.name"
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Rollout",type=integer,JSONPath=`.spec.rollout.percentage`
// +kubebuilder:printcolumn:name="Users",type=integer,JSONPath=`.status.userOverrides`,description="Active user overrides"
// +kubebuilder:printcolumn:name="Devices",type=integer,JSONPath=`.status.deviceOverrides`,description="Active device overrides"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FeatureFlag struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata. metadata.name is the flag key unless spec.key
	// sets one (for example billing.enabled).
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec defines the flag.
	// +required
	Spec FeatureFlagSpec `json:"spec,omitzero"`

	// status is the observed state of the flag, written by the controller. Until the
	// controller has written it, it reads as observedGeneration 0, which GitOps tools take
	// as "not observed yet".
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status FeatureFlagStatus `json:"status,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value ({}); only the controller writes status, through the status subresource, and an empty status means nothing observed yet, as an absent one would.
}

// FeatureFlagList contains a list of FeatureFlag.
//
// +kubebuilder:object:root=true
type FeatureFlagList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FeatureFlag `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &FeatureFlag{}, &FeatureFlagList{})
		return nil
	})
}
