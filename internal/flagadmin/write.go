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

package flagadmin

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Writer changes flagops objects with the caller's credentials. Every method sends the
// object's resourceVersion, when it has one, as a precondition, so that a change made since
// it was read is reported as a Conflict rather than overwritten; on success obj holds what
// the API server stored (or, with dryRun, would have stored).
type Writer interface {
	// Create creates obj; a concurrent create of the same name is AlreadyExists.
	Create(ctx context.Context, obj client.Object, dryRun bool) error
	// Apply server-side applies obj, which must carry its resourceVersion.
	Apply(ctx context.Context, obj client.Object, dryRun bool) error
	// Patch sends the JSON merge patch to obj; the patch carries the resourceVersion.
	Patch(ctx context.Context, obj client.Object, patch []byte, dryRun bool) error
	// Delete deletes obj if its UID and resourceVersion are still those given.
	Delete(ctx context.Context, obj client.Object, dryRun bool) error
}

// clientWriter is the Writer of a cluster.
type clientWriter struct {
	c            client.Client
	fieldManager string
}

// NewWriter returns the Writer that writes through c under fieldManager.
func NewWriter(c client.Client, fieldManager string) Writer {
	return &clientWriter{c: c, fieldManager: fieldManager}
}

func (w *clientWriter) Create(ctx context.Context, obj client.Object, dryRun bool) error {
	opts := []client.CreateOption{client.FieldOwner(w.fieldManager)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return w.c.Create(ctx, obj, opts...)
}

func (w *clientWriter) Apply(ctx context.Context, obj client.Object, dryRun bool) error {
	u, err := ToUnstructured(obj)
	if err != nil {
		return err
	}
	opts := []client.ApplyOption{client.FieldOwner(w.fieldManager), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	ac := client.ApplyConfigurationFromUnstructured(u)
	if err := w.c.Apply(ctx, ac, opts...); err != nil {
		return err
	}
	return fromUnstructured(u.Object, obj)
}

func (w *clientWriter) Patch(ctx context.Context, obj client.Object, patch []byte, dryRun bool) error {
	opts := []client.PatchOption{client.FieldOwner(w.fieldManager)}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return w.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), opts...)
}

func (w *clientWriter) Delete(ctx context.Context, obj client.Object, dryRun bool) error {
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	opts := []client.DeleteOption{client.Preconditions{UID: &uid, ResourceVersion: &rv}}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return w.c.Delete(ctx, obj, opts...)
}

// ToUnstructured returns obj as an unstructured object with its apiVersion and kind.
func ToUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("failed to convert %s: %w", obj.GetName(), err)
	}
	u := &unstructured.Unstructured{Object: m}
	gvks, _, err := NewScheme().ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("failed to find the kind of %T: %w", obj, err)
	}
	u.SetGroupVersionKind(gvks[0])
	return u, nil
}

func fromUnstructured(m map[string]any, obj client.Object) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, obj); err != nil {
		return fmt.Errorf("failed to convert the server's answer: %w", err)
	}
	return nil
}

// RVPatch returns a JSON merge patch of spec that carries resourceVersion rv as a
// precondition.
func RVPatch(rv string, spec map[string]any) ([]byte, error) {
	return json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": rv},
		"spec":     spec,
	})
}

// Override write actions, in kubectl's words.
const (
	ActionUnchanged  = "unchanged"
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionDeleted    = "deleted"
)

// OverrideAction is what storing next in place of cur (the listed object, when exists) does:
// nothing when the spec is the same, else create a new object, delete one left without
// entries, or configure it.
func OverrideAction(cur Override, exists bool, next Override) string {
	switch {
	case exists && equality.Semantic.DeepEqual(*cur.Spec, *next.Spec):
		return ActionUnchanged
	case !exists:
		return ActionCreated
	case len(next.Spec.Flags) == 0:
		return ActionDeleted
	}
	return ActionConfigured
}

// WriteOverride stores next in place of cur (the listed object, when exists) as
// OverrideAction says: it creates a new object, deletes one left without entries (UID and
// resourceVersion preconditions), sends a merge patch of the spec with the resourceVersion
// when entries are removed (server-side apply removes only the fields its own manager owns),
// and otherwise server-side applies the spec with the resourceVersion. It returns the action
// and the object the API server returned (nil when deleted or unchanged).
func WriteOverride(ctx context.Context, w Writer, s Subject, cur Override, exists bool, next Override, dryRun bool) (string, client.Object, error) {
	action := OverrideAction(cur, exists, next)
	if action == ActionUnchanged {
		return action, nil, nil
	}
	body := s.NewOverride(next.Obj.GetNamespace(), next.Obj.GetName())
	*body.Spec = *next.Spec.DeepCopy()
	var err error
	switch {
	case action == ActionCreated:
		err = w.Create(ctx, body.Obj, dryRun)
	case action == ActionDeleted:
		err = w.Delete(ctx, cur.Obj, dryRun)
	case removesEntries(cur, next):
		body.Obj.SetResourceVersion(cur.Obj.GetResourceVersion())
		// The spec's other fields as set changes them: it never removes an expiry or a reason.
		spec := map[string]any{"flags": next.Spec.Flags}
		if next.Spec.ExpiresAt != nil {
			spec["expiresAt"] = next.Spec.ExpiresAt
		}
		if next.Spec.Reason != "" {
			spec["reason"] = next.Spec.Reason
		}
		var patch []byte
		if patch, err = RVPatch(cur.Obj.GetResourceVersion(), spec); err == nil {
			body = cur.CopyOf()
			err = w.Patch(ctx, body.Obj, patch, dryRun)
		}
	default:
		body.Obj.SetResourceVersion(cur.Obj.GetResourceVersion())
		err = w.Apply(ctx, body.Obj, dryRun)
	}
	if err != nil {
		return "", nil, err
	}
	if action == ActionDeleted {
		return action, nil, nil
	}
	return action, body.Obj, nil
}

// removesEntries reports whether next lacks a key that cur has.
func removesEntries(cur, next Override) bool {
	for _, e := range cur.Spec.Flags {
		if next.Entry(e.Key) < 0 {
			return true
		}
	}
	return false
}
