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
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

// unverifiedSink reports every record it writes whose actor is not verified: it counts it
// in flagops_audit_unverified_changes_total and records a Warning event UnverifiedChange on
// the object. It sits under the Dedup sink, so a record that Dedup drops as a repeat is
// neither counted nor reported again.
type unverifiedSink struct {
	audit.Sink
	recorder events.EventRecorder
}

// Write implements audit.Sink.
func (s unverifiedSink) Write(ctx context.Context, r audit.Record) error {
	if err := s.Sink.Write(ctx, r); err != nil {
		return err
	}
	if !r.Actor.Verified {
		reportUnverified(s.recorder, r)
	}
	return nil
}

// reportUnverified counts and reports the unverified actor of a written record.
func reportUnverified(recorder events.EventRecorder, r audit.Record) {
	unverifiedChanges.WithLabelValues(r.Object.Kind).Inc()
	kind := Kind(r.Object.Kind)
	if recorder == nil || !slices.Contains(Kinds, kind) {
		return
	}
	// The event names the object by reference; the recorded version may be gone already.
	obj := kind.NewObject()
	obj.SetNamespace(r.Object.Namespace)
	obj.SetName(r.Object.Name)
	obj.SetUID(types.UID(r.Object.UID))
	claimed := "no name"
	if r.Actor.Claimed != "" {
		claimed = fmt.Sprintf("the name %q", r.Actor.Claimed)
	}
	recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1.EventReasonUnverifiedChange, "Audit",
		"%s at generation %d has no valid actor stamp (the annotation gave %s); recorded with actor.verified false and field manager %q as a hint",
		r.Action, r.Object.Generation, claimed, r.Actor.Username)
}
