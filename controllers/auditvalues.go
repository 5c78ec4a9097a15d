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
	"github.com/flagops/flagops/evaluator/adapt"
	"github.com/flagops/flagops/internal/audit"
	"github.com/flagops/flagops/internal/stamp"
)

// FieldOwner is the field manager of every write the controllers make. The fallback actor
// lookup skips it, so that the controller's own finalizer and status writes never count as
// the change being audited.
const FieldOwner = "flagops-manager"

// Keys of an override's own fields in audit records. Flag keys cannot contain "/", so these
// never collide with a flag key.
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
	ref := audit.ObjectRef{
		Kind:            string(kind),
		Namespace:       obj.GetNamespace(),
		Name:            obj.GetName(),
		UID:             string(obj.GetUID()),
		Generation:      obj.GetGeneration(),
		ResourceVersion: obj.GetResourceVersion(),
	}
	if f, ok := obj.(*v1.FeatureFlag); ok {
		ref.Key = adapt.FlagKey(f)
	}
	return ref
}

// Actors resolves who made a change, and whether that is known for certain.
//
// The webhooks write the name of whoever changed or deleted an object into an annotation
// and sign it with a stamp (package internal/stamp). A name is trusted (Verified) only when
// its stamp verifies for the object version being audited: the same kind, namespace, name,
// spec and, for an update, the UID and the generation it replaced; for a deletion, the
// UID. Anything else (no stamp, a stamp made with another key, a name written by hand while
// the webhooks were down, a stamp left behind from an earlier spec) gives an unverified
// actor: the field manager of the last spec write as a hint, and the annotation's name in
// Claimed.
type Actors struct {
	// APIReader reads an object without the cache when the copy at hand has no managedFields.
	APIReader client.Reader
	// Self is the actor of automatic changes: expiry cleanup and schedule steps.
	Self audit.Actor
	// Keys verify the stamps; nil verifies none, so that every actor but Self is unverified.
	Keys *stamp.Keys
}

// SpecHash returns the hash of obj's spec that the actor stamps cover (stamp.SpecHash).
func SpecHash(obj client.Object) (string, error) {
	var spec any
	switch o := obj.(type) {
	case *v1.FeatureFlag:
		spec = &o.Spec
	case *v1.UserFlagOverride:
		spec = &o.Spec
	case *v1.DeviceFlagOverride:
		spec = &o.Spec
	default:
		return "", fmt.Errorf("%T is not a flagops object", obj)
	}
	return stamp.SpecHash(spec)
}

// Of returns the actor of the latest spec write to obj: the user the mutating webhook
// stamped in flagops.dev/changed-by when its stamp verifies for this version of obj, or
// else, unverified, the manager of the latest write in managedFields other than this
// controller. The request is the console request of a verified write (see
// OfGeneration), or nil.
func (a Actors) Of(ctx context.Context, kind Kind, obj client.Object) (audit.Actor, *audit.Request) {
	return a.OfGeneration(ctx, kind, obj, obj.GetGeneration())
}

// OfGeneration is Of for the spec that obj holds as of generation gen: the deletion of an
// object moves its generation on without a spec write, and leaves the stamp of the write
// before it.
//
// The stamp also covers flagops.dev/changed-by-request, the console request the webhook
// read from the user's extras: it is returned when the actor is verified, and a request
// annotation that the stamp does not cover (written, changed or removed by hand) makes the
// actor unverified.
func (a Actors) OfGeneration(ctx context.Context, kind Kind, obj client.Object, gen int64) (audit.Actor, *audit.Request) {
	annotations := obj.GetAnnotations()
	claimed := annotations[v1.AnnotationChangedBy]
	req, ok := parseRequestAnnotation(annotations[v1.AnnotationChangedByRequest])
	if claimed != "" && ok && a.Keys != nil {
		hash, err := SpecHash(obj)
		if err == nil && a.Keys.Verify(stamp.ForWrite(string(kind), obj.GetNamespace(), obj.GetName(), string(obj.GetUID()),
			gen, hash, claimed).WithRequest(req), annotations[v1.AnnotationChangedByStamp]) {
			return audit.Actor{Username: claimed, Verified: true}, req
		}
	}
	return audit.Actor{Username: a.hint(ctx, kind, obj), Claimed: claimed}, nil
}

// OfDeletion returns the actor of obj's deletion: the user the DELETE webhook stamped in
// flagops.dev/deleted-by when its stamp verifies for obj's UID, or else, unverified, the
// manager of the latest write (the API does not record who deleted an object). The stamp
// covers flagops.dev/deleted-by-request as OfGeneration's covers changed-by-request.
func (a Actors) OfDeletion(ctx context.Context, kind Kind, obj client.Object) (audit.Actor, *audit.Request) {
	annotations := obj.GetAnnotations()
	claimed := annotations[v1.AnnotationDeletedBy]
	req, ok := parseRequestAnnotation(annotations[v1.AnnotationDeletedByRequest])
	if claimed != "" && ok && a.Keys.Verify(stamp.ForDelete(string(kind), obj.GetNamespace(), obj.GetName(), string(obj.GetUID()), claimed).
		WithRequest(req), annotations[v1.AnnotationDeletedByStamp]) {
		return audit.Actor{Username: claimed, Verified: true}, req
	}
	return audit.Actor{Username: a.hint(ctx, kind, obj), Claimed: claimed}, nil
}

// RequestAnnotation returns the value of the request annotations
// (flagops.dev/changed-by-request, deleted-by-request) for r: its JSON object, or "" when
// r holds nothing.
func RequestAnnotation(r *audit.Request) string {
	if r == nil || *r == (audit.Request{}) {
		return ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		// A struct of strings always encodes.
		panic(fmt.Sprintf("flagops: marshal a request annotation: %v", err))
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// parseRequestAnnotation reads a request annotation: nil for "" (no request), and false
// when it is not a JSON object.
func parseRequestAnnotation(value string) (*audit.Request, bool) {
	if value == "" {
		return nil, true
	}
	var r audit.Request
	if err := json.Unmarshal([]byte(value), &r); err != nil {
		return nil, false
	}
	if r == (audit.Request{}) {
		return nil, true
	}
	return &r, true
}

// hint names the field manager of the last write to obj, reading obj again without the
// cache when it has no managedFields.
func (a Actors) hint(ctx context.Context, kind Kind, obj client.Object) string {
	if entries := obj.GetManagedFields(); len(entries) > 0 {
		return lastManager(entries)
	}
	fresh := kind.NewObject()
	if err := a.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		return "unknown"
	}
	return lastManager(fresh.GetManagedFields())
}

// lastManager returns the manager of the latest non-status write, other than FieldOwner,
// preferring the writers that own spec fields.
func lastManager(entries []metav1.ManagedFieldsEntry) string {
	var candidates, spec []metav1.ManagedFieldsEntry
	for _, e := range entries {
		if e.Manager == FieldOwner || e.Subresource != "" || e.Time == nil {
			continue
		}
		candidates = append(candidates, e)
		if e.FieldsV1 != nil && bytes.Contains(e.FieldsV1.GetRawBytes(), []byte(`"f:spec"`)) {
			spec = append(spec, e)
		}
	}
	if len(spec) > 0 {
		candidates = spec
	}
	if len(candidates) == 0 {
		return "unknown"
	}
	latest := slices.MaxFunc(candidates, func(x, y metav1.ManagedFieldsEntry) int {
		return cmp.Or(x.Time.Compare(y.Time.Time), strings.Compare(x.Manager, y.Manager))
	})
	return latest.Manager
}
