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

package controllers

import (
	"bytes"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/flagops/flagops/api/v1alpha1"
)

// LastAppliedAnnotation is the annotation kubectl apply (client-side) writes: a full copy of
// the object, which the cache does not need.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// StripForCache is the cache transform: it drops the last-applied annotation, and the field
// sets of managedFields, which are often larger than the object itself. It keeps, for each
// manager, when it wrote and whether it owns spec fields (a FieldsV1 of just "f:spec"), which
// is what the audit trail's actor hints read (lastManager, knownActors), so that a hint
// describes the version the watch delivered, without reading the object again. Controllers
// never Update cached objects (they patch), so nothing is lost on the server.
func StripForCache(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		// Not an object (for example a tombstone): leave it alone.
		return in, nil
	}
	if entries := obj.GetManagedFields(); entries != nil {
		kept := make([]metav1.ManagedFieldsEntry, len(entries))
		for i, e := range entries {
			kept[i] = metav1.ManagedFieldsEntry{Manager: e.Manager, Operation: e.Operation, Time: e.Time, Subresource: e.Subresource}
			if e.FieldsV1 != nil && bytes.Contains(e.FieldsV1.GetRawBytes(), []byte(`"f:spec"`)) {
				kept[i].FieldsType, kept[i].FieldsV1 = "FieldsV1", metav1.NewFieldsV1(`{"f:spec":{}}`)
			}
		}
		obj.SetManagedFields(kept)
	}
	if a := obj.GetAnnotations(); a != nil {
		if _, ok := a[LastAppliedAnnotation]; ok {
			delete(a, LastAppliedAnnotation)
			obj.SetAnnotations(a)
		}
	}
	return in, nil
}

// ServingTransform is the cache transform of the read-only serving modes (`flagops evaluator`
// and `flagops sidecar`), whose only reader of the cache is the Syncer: of a flagops object it
// keeps the spec and the metadata the Syncer reads (name, namespace, uid, resourceVersion,
// generation, creation and deletion timestamps), and drops the status, labels, annotations,
// finalizers, owner references and managedFields, which a serving replica never reads.
// Other objects get StripForCache.
func ServingTransform(in any) (any, error) {
	switch o := in.(type) {
	case *v1.FeatureFlag:
		o.ObjectMeta, o.Status = servingMeta(&o.ObjectMeta), v1.FeatureFlagStatus{}
	case *v1.UserFlagOverride:
		o.ObjectMeta, o.Status = servingMeta(&o.ObjectMeta), v1.FlagOverrideStatus{}
	case *v1.DeviceFlagOverride:
		o.ObjectMeta, o.Status = servingMeta(&o.ObjectMeta), v1.FlagOverrideStatus{}
	default:
		return StripForCache(in)
	}
	return in, nil
}

// servingMeta is the part of m that the Syncer reads.
func servingMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Generation:        m.Generation,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
	}
}
