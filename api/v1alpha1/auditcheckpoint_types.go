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

// AuditCheckpointSpec is the audit trail's bookkeeping for one flag or override.
type AuditCheckpointSpec struct {
	// kind is the kind of the audited object.
	// +required
	// +kubebuilder:validation:Enum=FeatureFlag;UserFlagOverride;DeviceFlagOverride
	Kind string `json:"kind,omitempty"`

	// name is the name of the audited object, in the checkpoint's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// uid is the UID of the audited object, at most 128 characters (a UID is 36).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	UID string `json:"uid,omitempty"`

	// generation is the metadata.generation of the audited object that was last recorded.
	// +required
	// +kubebuilder:validation:Minimum=0
	Generation int64 `json:"generation"` //nolint:kubeapilinter // requiredfields wants a pointer with omitempty for the valid zero value; only the manager writes checkpoints, always with the generation it recorded, and Go always sends it (no omitempty), so "unset" never occurs.

	// auditedAt is when the last record was written.
	// +optional
	AuditedAt *metav1.MicroTime `json:"auditedAt,omitempty"`

	// values are the audited values at generation, as gzip-compressed JSON, keyed as in audit
	// records. At most 1.5 MiB in base64, the most etcd stores for a whole object.
	// +optional
	// +kubebuilder:validation:MaxLength=1572864
	Values []byte `json:"values,omitempty"`

	// pending holds the records being written, as a gzip-compressed JSON array. They are
	// stored before they are sent, and cleared once the sink has them, so that a manager that
	// stops in between leaves its successor the same records to send, with the same IDs.
	// At most 1.5 MiB in base64, the most etcd stores for a whole object.
	// +optional
	// +kubebuilder:validation:MaxLength=1572864
	Pending []byte `json:"pending,omitempty"`
}

// AuditCheckpoint is the manager's record of what the audit trail holds for one FeatureFlag,
// UserFlagOverride or DeviceFlagOverride: the generation and values last recorded, and the
// records being written. Only the manager reads and writes it; it is deleted with the
// deletion record of its object. It keeps the audited values out of the object itself, so
// that auditing never doubles an object's size.
//
// +kubebuilder:object:root=true
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.kind`
// +kubebuilder:printcolumn:name="Object",type=string,JSONPath=`.spec.name`
// +kubebuilder:printcolumn:name="Generation",type=integer,JSONPath=`.spec.generation`
// +kubebuilder:printcolumn:name="Audited",type=date,JSONPath=`.spec.auditedAt`
type AuditCheckpoint struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the checkpoint.
	// +required
	Spec AuditCheckpointSpec `json:"spec,omitzero"`
}

// +kubebuilder:object:root=true

// AuditCheckpointList contains a list of AuditCheckpoint.
type AuditCheckpointList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuditCheckpoint `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &AuditCheckpoint{}, &AuditCheckpointList{})
		return nil
	})
}
