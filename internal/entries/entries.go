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

// Package entries checks the shape of an override's spec.flags for the two habits of
// PATCH-style flag APIs (seed 000's `{flags: [{key, value}]}`) that a custom resource does
// not share:
//
//   - `{key, value: null}` clears an override there; here an override is cleared by
//     removing its entry, and a null value is rejected:
//     `spec.flags[0].value: null does not clear an override; remove the entry instead`;
//   - a repeated key is resolved there by the last one winning; here each key appears at
//     most once: `spec.flags[3].key: duplicate of spec.flags[1].key`.
//
// A JSON merge patch (kubectl apply of an existing object, kubectl edit, kubectl patch
// --type merge) drops a null inside a list entry before admission, so the entry arrives
// with its key alone; that gets its own message, which says to remove the entry.
//
// Check works on the object as decoded from JSON or YAML, before any schema pruning:
// typed decoding turns a null value into no value, and the CRD's list-map validation would
// report a repeated key with the API server's generic message first. The admission webhook
// (internal/webhook, a mutating webhook that runs before schema validation) and `serve
// --dir` (internal/localdir, before the CRD schema) both call it.
package entries

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The details of the three problems, without the field path.
const (
	DetailNull      = "null does not clear an override; remove the entry instead"
	DetailKeyOnly   = "has neither value nor enabled; to clear the override, remove the entry (kubectl apply and merge patches drop a null value, which leaves the key alone)"
	detailDuplicate = "duplicate of %s"
)

// Error is one problem with one entry. Its message is the field path and the detail.
type Error struct {
	// Field is the path of the entry or of its field, e.g. spec.flags[3].key.
	Field string
	// Type is the kind of problem, for API status causes: FieldValueInvalid for a null
	// value, FieldValueRequired for an entry with its key alone, FieldValueDuplicate for a
	// repeated key.
	Type field.ErrorType
	// Detail says what to do.
	Detail string
}

// Error returns e.g. "spec.flags[3].key: duplicate of spec.flags[1].key".
func (e *Error) Error() string { return e.Field + ": " + e.Detail }

// Check returns the problems of the entries in obj's spec.flags, in entry order: a null
// value, an entry with its key alone, and a key that an earlier entry already has. Anything
// else that is malformed (no spec, flags not a list, an entry that is not an object, a key
// that is not a string) is left to the CRD schema, which reports it.
func Check(obj map[string]any) []*Error {
	spec, _ := obj["spec"].(map[string]any)
	list, _ := spec["flags"].([]any)
	flags := field.NewPath("spec", "flags")
	var errs []*Error
	first := map[string]int{}
	for i, item := range list {
		e, ok := item.(map[string]any)
		if !ok {
			continue
		}
		path := flags.Index(i)
		value, hasValue := e["value"]
		switch {
		case hasValue && value == nil:
			errs = append(errs, &Error{Field: path.Child("value").String(), Type: field.ErrorTypeInvalid, Detail: DetailNull})
		case !hasValue && e["enabled"] == nil:
			errs = append(errs, &Error{Field: path.String(), Type: field.ErrorTypeRequired, Detail: DetailKeyOnly})
		}
		key, ok := e["key"].(string)
		if !ok {
			continue
		}
		if j, seen := first[key]; seen {
			errs = append(errs, &Error{Field: path.Child("key").String(), Type: field.ErrorTypeDuplicate,
				Detail: fmt.Sprintf(detailDuplicate, flags.Index(j).Child("key"))})
			continue
		}
		first[key] = i
	}
	return errs
}
