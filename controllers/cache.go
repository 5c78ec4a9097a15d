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
	"k8s.io/apimachinery/pkg/api/meta"
)

// LastAppliedAnnotation is the annotation kubectl apply (client-side) writes: a full copy of
// the object, which the cache does not need.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// StripForCache is the cache transform: it drops managedFields and the last-applied
// annotation, which are often larger than the object itself. Controllers never Update cached
// objects (they patch), so nothing is lost on the server. The lifecycle controllers read
// managedFields with an uncached reader when they need the fallback actor.
func StripForCache(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		// Not an object (for example a tombstone): leave it alone.
		return in, nil
	}
	obj.SetManagedFields(nil)
	if a := obj.GetAnnotations(); a != nil {
		if _, ok := a[LastAppliedAnnotation]; ok {
			delete(a, LastAppliedAnnotation)
			obj.SetAnnotations(a)
		}
	}
	return in, nil
}
