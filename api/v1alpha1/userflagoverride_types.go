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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// UserFlagOverrideSpec sets flag values for one user.
type UserFlagOverrideSpec struct {
	// userId is the ID of the user the override applies to, as the application passes it in the evaluation context (userId, or targetingKey). It cannot be changed after creation.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="userId is immutable; create a new override instead"
	UserID string `json:"userId,omitempty"`

	FlagOverrideSpec `json:",inline"`
}

// UserFlagOverride sets per-user flag values that beat the flags' own evaluation.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ufo,categories=flagops
// +kubebuilder:selectablefield:JSONPath=`.spec.userId`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.userId`
// +kubebuilder:printcolumn:name="Flags",type=integer,JSONPath=`.status.flagCount`,description="Number of flag entries"
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UserFlagOverride struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the overridden flags for one user.
	// +required
	Spec UserFlagOverrideSpec `json:"spec,omitzero"`

	// status is the observed state of the override, written by the controller. Until the
	// controller has written it, it reads as observedGeneration 0, which GitOps tools take
	// as "not observed yet".
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status FlagOverrideStatus `json:"status,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value ({}); only the controller writes status, through the status subresource, and an empty status means nothing observed yet, as an absent one would.
}

// UserFlagOverrideList contains a list of UserFlagOverride.
//
// +kubebuilder:object:root=true
type UserFlagOverrideList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserFlagOverride `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &UserFlagOverride{}, &UserFlagOverrideList{})
		return nil
	})
}
