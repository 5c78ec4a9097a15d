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

// DeviceFlagOverrideSpec sets flag values for one device.
type DeviceFlagOverrideSpec struct {
	// deviceId is the ID of the device the override applies to, as the device passes it in the evaluation context (deviceId). It cannot be changed after creation.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="deviceId is immutable; create a new override instead"
	DeviceID string `json:"deviceId,omitempty"`

	FlagOverrideSpec `json:",inline"`
}

// DeviceFlagOverride sets per-device flag values that beat the flags' own evaluation.
// A device override beats a user override, and applies only when the device's class is
// eligible for the flag (spec.deviceClasses of the FeatureFlag).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dfo,categories=flagops
// +kubebuilder:selectablefield:JSONPath=`.spec.deviceId`
// +kubebuilder:printcolumn:name="Device",type=string,JSONPath=`.spec.deviceId`
// +kubebuilder:printcolumn:name="Flags",type=integer,JSONPath=`.status.flagCount`,description="Number of flag entries"
// +kubebuilder:printcolumn:name="Expires",type=string,format=date-time,JSONPath=`.spec.expiresAt`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DeviceFlagOverride struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the overridden flags for one device.
	// +required
	Spec DeviceFlagOverrideSpec `json:"spec,omitzero"`

	// status is the observed state of the override, written by the controller. Until the
	// controller has written it, it reads as observedGeneration 0, which GitOps tools take
	// as "not observed yet".
	// +optional
	// +kubebuilder:default={observedGeneration: 0}
	Status FlagOverrideStatus `json:"status,omitempty"` //nolint:kubeapilinter // optionalfields wants a pointer for the valid zero value ({}); only the controller writes status, through the status subresource, and an empty status means nothing observed yet, as an absent one would.
}

// DeviceFlagOverrideList contains a list of DeviceFlagOverride.
//
// +kubebuilder:object:root=true
type DeviceFlagOverrideList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DeviceFlagOverride `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &DeviceFlagOverride{}, &DeviceFlagOverrideList{})
		return nil
	})
}
