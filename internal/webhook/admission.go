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

package webhook

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/controllers"
	"github.com/flagops/flagops/internal/audit"
)

// requester is who sent an admission request, and through which console request.
type requester struct {
	user string
	// request is the console's request, from the user's extras; nil when there is none.
	request *audit.Request
}

// requesterOf returns who sent req. The extras that carry the console's request can only be
// set by a client allowed to impersonate them, so they are trusted as the user name is.
func requesterOf(req admission.Request) requester {
	extra := make(map[string][]string, len(req.UserInfo.Extra))
	for k, v := range req.UserInfo.Extra {
		extra[k] = v
	}
	return requester{user: req.UserInfo.Username, request: audit.RequestFromExtra(extra)}
}

// kindOf returns the flagops kind of the object in an admission request.
func kindOf(req admission.Request) (controllers.Kind, bool) {
	if req.Kind.Group != v1.GroupVersion.Group {
		return "", false
	}
	k := controllers.Kind(req.Kind.Kind)
	return k, slices.Contains(controllers.Kinds, k)
}

// specOf returns a pointer to the spec of a flagops object, for comparisons.
func specOf(obj client.Object) any {
	switch o := obj.(type) {
	case *v1.FeatureFlag:
		return &o.Spec
	case *v1.UserFlagOverride:
		return &o.Spec
	case *v1.DeviceFlagOverride:
		return &o.Spec
	default:
		return nil
	}
}

// patchOp is one JSON Patch (RFC 6902) operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// annotationPath is the JSON Pointer (RFC 6901) of an annotation.
func annotationPath(key string) string {
	return "/metadata/annotations/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(key)
}

// setAnnotations returns the operations that give the annotations in want their values,
// creating the annotations map when the object has none. Annotations that already have
// their value need no operation.
func setAnnotations(annotations map[string]string, want map[string]string) []patchOp {
	changed := map[string]string{}
	for k, v := range want {
		if cur, ok := annotations[k]; !ok || cur != v {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if annotations == nil {
		return []patchOp{{Op: "add", Path: "/metadata/annotations", Value: changed}}
	}
	ops := make([]patchOp, 0, len(changed))
	for _, k := range slices.Sorted(maps.Keys(changed)) {
		// "add" replaces the member when it exists.
		ops = append(ops, patchOp{Op: "add", Path: annotationPath(k), Value: changed[k]})
	}
	return ops
}

// restoreAnnotations returns the operations that give each of keys in cur the value it has
// in old, or remove it when old does not have it (old may be the annotations wanted).
func restoreAnnotations(old, cur map[string]string, keys ...string) []patchOp {
	want := map[string]string{}
	var ops []patchOp
	for _, k := range keys {
		was, had := old[k]
		_, has := cur[k]
		switch {
		case had:
			want[k] = was
		case has:
			ops = append(ops, patchOp{Op: "remove", Path: annotationPath(k)})
		}
	}
	return append(ops, setAnnotations(cur, want)...)
}

// patched allows a request with a JSON Patch. The patch is set as raw bytes so that the
// response carries exactly these operations.
func patched(message string, ops ...patchOp) admission.Response {
	resp := admission.Allowed(message)
	raw, err := json.Marshal(ops)
	if err != nil {
		// patchOp holds strings and string maps only, which always marshal.
		panic("flagops: marshal a JSON patch: " + err.Error())
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = raw, &pt
	return resp
}
