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
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

// FieldOwner is the field manager of every write the controllers make. The fallback actor
// lookup skips it, so that the controller's own finalizer and status writes never count as
// the change being audited.
const FieldOwner = "flagops-manager"

// Keys of an override's own fields in audit records. Flag keys are DNS subdomains and cannot
// contain "/", so these never collide with a flag key.
const (
	auditKeyEnabled   = "override/enabled"
	auditKeyExpiresAt = "override/expiresAt"
	auditKeyReason    = "override/reason"
	auditKeyOnExpiry  = "override/onExpiry"
)

func mustJSON(v any) json.RawMessage {
	raw, err := json.Marshal(v)
	if err != nil {
		// Only called with values built from API types, which always marshal.
		panic(fmt.Sprintf("flagops: marshal audit value: %v", err))
	}
	return raw
}

// flagValues returns the audited values of a FeatureFlag: its spec, keyed by field name.
func flagValues(f *v1.FeatureFlag) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(mustJSON(f.Spec), &m); err != nil {
		panic(fmt.Sprintf("flagops: unmarshal flag spec: %v", err))
	}
	// enabled is omitted when false; the master switch is always recorded.
	if _, ok := m["enabled"]; !ok {
		m["enabled"] = json.RawMessage("false")
	}
	return m
}

// overrideValues returns the audited values of an override: one value per flag key (the
// entry without its key) and the override's own fields.
func overrideValues(s *v1.FlagOverrideSpec) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, len(s.Flags)+4)
	for _, e := range s.Flags {
		entry := map[string]any{}
		if e.Value != nil && len(e.Value.Raw) > 0 {
			entry["value"] = json.RawMessage(e.Value.Raw)
		}
		if e.Enabled != nil {
			entry["enabled"] = *e.Enabled
		}
		m[e.Key] = mustJSON(entry)
	}
	m[auditKeyEnabled] = mustJSON(s.Enabled == nil || *s.Enabled)
	if s.ExpiresAt != nil {
		m[auditKeyExpiresAt] = mustJSON(s.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if s.Reason != "" {
		m[auditKeyReason] = mustJSON(s.Reason)
	}
	m[auditKeyOnExpiry] = mustJSON(cmp.Or(s.OnExpiry, v1.OnExpiryDelete))
	return m
}

func toStatusValues(m map[string]json.RawMessage) map[string]apiextensionsv1.JSON {
	out := make(map[string]apiextensionsv1.JSON, len(m))
	for k, v := range m {
		out[k] = apiextensionsv1.JSON{Raw: v}
	}
	return out
}

func fromStatusValues(m map[string]apiextensionsv1.JSON) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v.Raw
	}
	return out
}

// nowOr returns clock(), or time.Now() when clock is nil.
func nowOr(clock func() time.Time) time.Time {
	if clock != nil {
		return clock()
	}
	return time.Now()
}

// writeRecord builds the audit record of change c at time at and writes it to sink.
func writeRecord(ctx context.Context, sink audit.Sink, at time.Time, c audit.Change) (audit.Record, error) {
	rec := audit.NewRecord(at, c)
	if err := sink.Write(ctx, rec); err != nil {
		return rec, fmt.Errorf("failed to write the %s audit record: %w", c.Action, err)
	}
	return rec, nil
}

// objectRef identifies obj in an audit record.
func objectRef(kind Kind, obj client.Object) audit.ObjectRef {
	return audit.ObjectRef{
		Kind:            string(kind),
		Namespace:       obj.GetNamespace(),
		Name:            obj.GetName(),
		UID:             string(obj.GetUID()),
		Generation:      obj.GetGeneration(),
		ResourceVersion: obj.GetResourceVersion(),
	}
}

// Actors resolves who made a change.
type Actors struct {
	// APIReader reads objects without the cache, whose objects have no managedFields.
	APIReader client.Reader
	// Self is the actor of automatic changes: expiry cleanup and schedule steps.
	Self audit.Actor
}

// Of returns the actor of the latest change to obj: the user the mutating webhook stamped in
// flagops.dev/changed-by, or else the manager of the latest write in managedFields, other
// than this controller.
func (a Actors) Of(ctx context.Context, kind Kind, obj client.Object) audit.Actor {
	if name := obj.GetAnnotations()[v1.AnnotationChangedBy]; name != "" {
		return audit.Actor{Username: name}
	}
	fresh := kind.NewObject()
	if err := a.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		return audit.Actor{Username: "unknown"}
	}
	return audit.Actor{Username: lastManager(fresh.GetManagedFields())}
}

// OfDeletion returns the actor of obj's deletion: the user the DELETE webhook stamped in
// flagops.dev/deleted-by, or else whoever Of names (the last modifier), since the API does
// not record who deleted an object.
func (a Actors) OfDeletion(ctx context.Context, kind Kind, obj client.Object) audit.Actor {
	if name := obj.GetAnnotations()[v1.AnnotationDeletedBy]; name != "" {
		return audit.Actor{Username: name}
	}
	return a.Of(ctx, kind, obj)
}

// lastManager returns the manager of the latest non-status write, other than FieldOwner.
func lastManager(entries []metav1.ManagedFieldsEntry) string {
	var candidates []metav1.ManagedFieldsEntry
	for _, e := range entries {
		if e.Manager == FieldOwner || e.Subresource != "" || e.Time == nil {
			continue
		}
		candidates = append(candidates, e)
	}
	if len(candidates) == 0 {
		return "unknown"
	}
	latest := slices.MaxFunc(candidates, func(x, y metav1.ManagedFieldsEntry) int {
		return cmp.Or(x.Time.Compare(y.Time.Time), strings.Compare(x.Manager, y.Manager))
	})
	return latest.Manager
}
