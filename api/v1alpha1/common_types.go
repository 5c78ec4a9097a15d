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
)

// Condition types.
const (
	// ConditionReady summarises whether the object is applied to the evaluator as written.
	ConditionReady = "Ready"
	// ConditionExpired is True once an override has passed spec.expiresAt and no longer applies.
	ConditionExpired = "Expired"
	// ConditionConflict is True when another override object sets the same (subject, key)
	// pair and wins; the message names the winning object.
	ConditionConflict = "Conflict"
	// ConditionStalled is True when the object cannot be applied as written without a change
	// by a person, to it or to another object: a FeatureFlag whose spec does not compile or
	// whose key an older flag has, an override with a value its flag rejects or that loses a
	// conflict. It is absent otherwise. kstatus reads Stalled=True as Failed.
	ConditionStalled = "Stalled"
	// ConditionReconciling is True while the object waits for something that may still come
	// without a change to it: an override entry names a flag that does not exist yet. It is
	// absent otherwise, and never True together with Stalled. kstatus reads
	// Reconciling=True as InProgress.
	ConditionReconciling = "Reconciling"
)

// Condition reasons.
const (
	// ReasonReconciled means the object was applied to the evaluator as written.
	ReasonReconciled = "Reconciled"
	// ReasonInvalidSpec means the spec cannot be served; the evaluator keeps the last valid version.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonPartiallyApplied means some override entries are not served: their values fail
	// their flags, their flags do not exist, or another override wins for them.
	ReasonPartiallyApplied = "PartiallyApplied"
	// ReasonExpired means an override passed spec.expiresAt (Ready and Expired).
	ReasonExpired = "Expired"
	// ReasonNotExpired means an override has no expiry or has not reached it.
	ReasonNotExpired = "NotExpired"
	// ReasonOverrideConflict means another override object wins for at least one key
	// (Conflict and Stalled).
	ReasonOverrideConflict = "OverrideConflict"
	// ReasonNoConflict means no other override object competes for this object's keys.
	ReasonNoConflict = "NoConflict"
	// ReasonDuplicateKey means an older FeatureFlag in the namespace has the same key and is
	// served instead of this one.
	ReasonDuplicateKey = "DuplicateKey"
	// ReasonInvalidValue means an override entry's value fails its flag's type or JSON Schema
	// (Stalled).
	ReasonInvalidValue = "InvalidValue"
	// ReasonUnknownFlag means an override entry names a flag that does not exist
	// (Reconciling).
	ReasonUnknownFlag = "UnknownFlag"
)

// Event reasons. Events are recorded on transitions, not on every reconcile.
const (
	// EventReasonUnknownFlag is a Warning: an override entry names a flag that does not exist.
	EventReasonUnknownFlag = "UnknownFlag"
	// EventReasonInvalidValue is a Warning: a value fails its flag's type or JSON Schema.
	EventReasonInvalidValue = "InvalidValue"
	// EventReasonInvalidSpec is a Warning: a FeatureFlag's own values fail its schema.
	EventReasonInvalidSpec = "InvalidSpec"
	// EventReasonDuplicateKey is a Warning: an older FeatureFlag has the same key and is
	// served instead.
	EventReasonDuplicateKey = "DuplicateKey"
	// EventReasonOverrideConflict is a Warning: another override object wins for a key.
	EventReasonOverrideConflict = "OverrideConflict"
	// EventReasonOverrideExpired is Normal: an override reached spec.expiresAt.
	EventReasonOverrideExpired = "OverrideExpired"
	// EventReasonScheduleApplied is Normal: a scheduled step of a FeatureFlag took effect.
	EventReasonScheduleApplied = "ScheduleApplied"
	// EventReasonUnverifiedChange is a Warning: the audit trail recorded a change whose
	// actor stamp is missing or does not verify, so the actor is only a hint.
	EventReasonUnverifiedChange = "UnverifiedChange"

	// The Normal Events of the audited changes: one per audit record of a create, an update
	// or a delete, on the changed object, with the actor, the changed keys and their values
	// before and after in the note (package internal/auditevent). There is one reason per
	// kind of object and action rather than one reason for all, so that the REASON column of
	// kubectl events --for says what happened without the note, and so that a field selector
	// finds one action in a namespace (kubectl get events --field-selector
	// reason=FlagDeleted). Overrides share their reasons, like OverrideExpired: the
	// Event's object says whether it is a user's or a device's.
	EventReasonFlagCreated     = "FlagCreated"
	EventReasonFlagUpdated     = "FlagUpdated"
	EventReasonFlagDeleted     = "FlagDeleted"
	EventReasonOverrideCreated = "OverrideCreated"
	EventReasonOverrideUpdated = "OverrideUpdated"
	EventReasonOverrideDeleted = "OverrideDeleted"
)

// Well-known annotations, labels and finalizers.
const (
	// AnnotationChangedBy is stamped by the mutating webhook with the name of the user
	// who created or last updated the object.
	AnnotationChangedBy = "flagops.dev/changed-by"
	// AnnotationDeletedBy is stamped by the validating webhook, just before the deletion
	// takes effect, with the name of the user who deleted the object. An object being
	// deleted cannot be mutated by admission, so the webhook patches it on the deleter's
	// behalf; the audit trail reads it when it records the deletion.
	AnnotationDeletedBy = "flagops.dev/deleted-by"
	// AnnotationOnExpiry, Retain or Delete, says what happens to an override at
	// spec.expiresAt. It wins over spec.onExpiry and over GitOps markers; any other value
	// is reported in the override's conditions and treated as Retain.
	AnnotationOnExpiry = "flagops.dev/on-expiry"
	// AnnotationChangedByStamp is the webhook's signature over flagops.dev/changed-by: an
	// HMAC over the user, the object and a hash of its spec (package internal/stamp). The
	// audit trail trusts changed-by only when the stamp verifies.
	AnnotationChangedByStamp = "flagops.dev/changed-by-stamp"
	// AnnotationDeletedByStamp is the webhook's signature over flagops.dev/deleted-by.
	AnnotationDeletedByStamp = "flagops.dev/deleted-by-stamp"
	// AnnotationChangedByRequest is written by the mutating webhook next to
	// flagops.dev/changed-by when the write came through flagops' console: the console's
	// request (route, source IP, user agent) as a JSON object, read from the user's extras.
	// The stamp covers it; it is absent otherwise.
	AnnotationChangedByRequest = "flagops.dev/changed-by-request"
	// AnnotationDeletedByRequest is AnnotationChangedByRequest for flagops.dev/deleted-by.
	AnnotationDeletedByRequest = "flagops.dev/deleted-by-request"
	// FinalizerAudit holds an object until its deletion has been audited.
	FinalizerAudit = "flagops.dev/audit"
)

// OnExpiry says what happens to an override when it reaches spec.expiresAt.
// +kubebuilder:validation:Enum=Delete;Retain
type OnExpiry string

const (
	// OnExpiryDelete deletes the override object at expiry.
	OnExpiryDelete OnExpiry = "Delete"
	// OnExpiryRetain keeps the override object with the condition Expired=True.
	OnExpiryRetain OnExpiry = "Retain"
)

// FlagOverrideEntry overrides one flag for the override's subject.
// At least one of value and enabled must be set; the object is rejected otherwise.
// +kubebuilder:validation:MinProperties=2
type FlagOverrideEntry struct {
	// key is the flag key of a FeatureFlag in the same namespace: its spec.key, or its
	// metadata.name when spec.key is omitted.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	Key string `json:"key,omitempty"`

	// value is served for this flag instead of the flag's own evaluation, when enabled is
	// not false. It must match the flag's type and JSON Schema. null is rejected: it does
	// not clear an override; to clear one, remove its entry. (The schema lets null through
	// so that the admission webhook can name it.)
	// +optional
	// +nullable
	Value *apiextensionsv1.JSON `json:"value,omitempty"` //nolint:kubeapilinter // nonullable: the schema keeps a null value so that the admission webhook, and the admission policy where webhooks are not installed, can reject it with a message that says what to do (remove the entry); pruned, it would fail as "at least 2 properties".

	// enabled set to false serves the flag's off value whatever value says.
	// Set to true with value omitted, it serves the flag's on value.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// FlagOverrideSpec holds the fields shared by user and device overrides.
type FlagOverrideSpec struct {
	// enabled says whether the whole override applies. A disabled override is kept but
	// ignored, so evaluation falls through to the flag's own rules.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// expiresAt is the instant (RFC 3339) at which the override stops applying. Expiry is
	// exact: the evaluator stops serving the override at that instant, before any cleanup.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// reason says why the override exists, for the audit trail and for operators: 1 to 500
	// characters. The evaluator also gives it to the clients of the override's subject,
	// with the flags it decides (overrideReason): do not put secrets in it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=500
	Reason string `json:"reason,omitempty"`

	// onExpiry says what happens at expiresAt: Delete removes the object, Retain keeps it
	// with the conditions Expired=True and Ready=True (reason Expired): it is applied as
	// written, by no longer being served. Objects that a GitOps tool or Helm manages (Argo
	// CD, Flux or Helm labels and annotations) are retained even with Delete, so that the
	// tool does not re-create them in a loop; the annotation flagops.dev/on-expiry (Retain
	// or Delete) wins over both.
	// +optional
	// +kubebuilder:default=Delete
	OnExpiry OnExpiry `json:"onExpiry,omitempty"`

	// flags lists the overridden flags, at most 32, each key at most once: a repeated key is
	// rejected, not resolved by the last one. To clear the override of one flag, remove its
	// entry; to clear them all, delete the object.
	// +required
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Flags []FlagOverrideEntry `json:"flags,omitempty"`
}

// InvalidKey names an override entry that the evaluator does not serve, and why.
type InvalidKey struct {
	// key is the flag key of the entry.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
	// message says why the entry is not served, e.g. an unknown flag or a schema failure. It
	// has the bound of a condition message (32768 characters): the Ready condition repeats it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message,omitempty"`
}

// AuditState is what versions of flagops before AuditCheckpoint kept in status about the audit
// trail. The manager reads it once, to start an object's AuditCheckpoint from it, and then
// removes it.
type AuditState struct {
	// generation is the metadata.generation that was last audited.
	// +required
	Generation int64 `json:"generation"` //nolint:kubeapilinter // requiredfields wants a pointer with omitempty for the valid zero value; the field is deprecated and frozen as earlier versions wrote it (always set), and is removed after one read.

	// values are the audited values, keyed as in audit records: spec field names for a
	// FeatureFlag; flag keys, and override/enabled, override/expiresAt, override/reason and
	// override/onExpiry, for an override.
	// +optional
	Values map[string]apiextensionsv1.JSON `json:"values,omitempty"` //nolint:kubeapilinter // nomaps: the deprecated status.audited, kept in the format earlier versions wrote so that the manager can read it once (into an AuditCheckpoint) and remove it; nothing writes it.
}

// FlagOverrideStatus is the observed state shared by user and device overrides.
type FlagOverrideStatus struct {
	// conditions hold Ready, Expired and Conflict, and Stalled (an entry's value that its
	// flag rejects, or a lost conflict) or Reconciling (an entry names a flag that does not
	// exist yet) while they apply; at most 16.
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

	// flagCount is the number of entries in spec.flags.
	// +optional
	FlagCount int32 `json:"flagCount,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value; 0 and omitted both mean no entries, as the Flags column shows.

	// appliedKeys lists the flag keys that the evaluator serves from this override: at most
	// 32, as spec.flags.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	AppliedKeys []string `json:"appliedKeys,omitempty"`

	// invalidKeys lists the entries that the evaluator does not serve, with the reason: at
	// most 32, as spec.flags.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +kubebuilder:validation:MaxItems=32
	InvalidKeys []InvalidKey `json:"invalidKeys,omitempty"`

	// audited is deprecated: it is left by earlier versions, read once into the object's
	// AuditCheckpoint, and then removed.
	// +optional
	Audited *AuditState `json:"audited,omitempty"`
}
