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
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/gitops"
)

// gitOpsMarker returns a description of the first GitOps marker obj carries (package
// internal/gitops), such as "label app.kubernetes.io/instance", or "" when it carries none.
// An expired override that carries one is kept rather than deleted, because the tool would
// re-create it from git, and the controller would delete it again, in a loop.
func gitOpsMarker(obj client.Object) string { return gitops.Marker(obj) }

// expiryPolicy is what happens to an override at spec.expiresAt.
type expiryPolicy struct {
	// retain keeps the object; otherwise it is deleted.
	retain bool
	// why says what decided it, to follow "kept because" or "deleted because".
	why string
}

// onExpiryOf decides what happens to obj at expiry. The first rule that applies decides:
//  1. the annotation flagops.dev/on-expiry: Retain or Delete; any other value is reported
//     and treated as Retain, the choice that cannot start a delete loop;
//  2. spec.onExpiry: Retain;
//  3. a GitOps marker (gitops.Markers) retains;
//  4. otherwise the object is deleted.
//
// spec.onExpiry: Delete cannot beat a GitOps marker: it is the default, so it says nothing
// about intent. The annotation can.
func onExpiryOf(obj client.Object, spec v1.OnExpiry) expiryPolicy {
	if v, ok := obj.GetAnnotations()[v1.AnnotationOnExpiry]; ok {
		switch v1.OnExpiry(v) {
		case v1.OnExpiryRetain:
			return expiryPolicy{retain: true, why: "the annotation " + v1.AnnotationOnExpiry + " is Retain"}
		case v1.OnExpiryDelete:
			return expiryPolicy{why: "the annotation " + v1.AnnotationOnExpiry + " is Delete"}
		default:
			return expiryPolicy{retain: true, why: fmt.Sprintf("the annotation %s has the invalid value %q "+
				"(want Retain or Delete), so the safe choice Retain applies", v1.AnnotationOnExpiry, v)}
		}
	}
	if spec == v1.OnExpiryRetain {
		return expiryPolicy{retain: true, why: "spec.onExpiry is Retain"}
	}
	if m := gitOpsMarker(obj); m != "" {
		return expiryPolicy{retain: true, why: "a GitOps tool manages it (" + m + "); remove it from git, " +
			"or set the annotation " + v1.AnnotationOnExpiry + ": Delete, to delete it"}
	}
	return expiryPolicy{why: "nothing retains it (no " + v1.AnnotationOnExpiry + " annotation, spec.onExpiry is not Retain, no GitOps marker)"}
}

// message describes when the override expires (at, RFC 3339) and what then happens to it.
func (p expiryPolicy) message(at string, expired bool) string {
	switch {
	case expired && p.retain:
		return "the override expired at " + at + " and is kept because " + p.why
	case expired:
		return "the override expired at " + at + " and is being deleted because " + p.why
	case p.retain:
		return "the override expires at " + at + ", and will then be kept because " + p.why
	default:
		return "the override expires at " + at + ", and will then be deleted because " + p.why
	}
}
