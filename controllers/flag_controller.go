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
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

// +kubebuilder:rbac:groups=flagops.dev,resources=featureflags,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=flagops.dev,resources=featureflags/status,verbs=patch
// +kubebuilder:rbac:groups=flagops.dev,resources=featureflags/finalizers,verbs=update

// FlagReconciler runs on the elected leader. It holds the audit finalizer, audits every
// change and every schedule step, and reports status: Ready, the counts of active
// overrides and the next schedule step.
type FlagReconciler struct {
	Client   client.Client
	Syncer   *Syncer
	Recorder events.EventRecorder
	Audit    audit.Sink
	Actors   Actors
	// Auditor records the changes themselves; schedule steps wait until it has recorded the
	// change they apply to. Nil waits for nothing.
	Auditor *Auditor
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (r *FlagReconciler) now() time.Time { return nowOr(r.Now) }

// Reconcile brings one flag's finalizer, audit trail and status up to date.
func (r *FlagReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	if !r.Syncer.Synced() {
		// The store is not complete yet; the store source enqueues every flag once it is.
		return ctrl.Result{}, nil
	}
	f := &v1.FeatureFlag{}
	if err := r.Client.Get(ctx, req.NamespacedName, f); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.auditDue(f) {
		if !auditedUpTo(r.Auditor, f) {
			return ctrl.Result{RequeueAfter: auditWait}, nil
		}
		// See OverrideReconciler.Reconcile: audit decisions use the API server's copy.
		fresh, err := refetch(ctx, r.Actors.APIReader, f)
		if err != nil || fresh == nil {
			return ctrl.Result{}, err
		}
		f = fresh.(*v1.FeatureFlag)
	}
	if !f.DeletionTimestamp.IsZero() {
		// The Auditor records the deletion and releases the finalizer.
		return ctrl.Result{}, nil
	}

	base := f.DeepCopy()
	defer func() {
		if retErr == nil && !equality.Semantic.DeepEqual(base.Status, f.Status) {
			if err := patchStatus(ctx, r.Client, f, base); err != nil {
				retErr = fmt.Errorf("failed to patch the status of flag %s: %w", req.NamespacedName, err)
			}
		}
	}()

	if err := r.ensureFinalizer(ctx, f); err != nil {
		return ctrl.Result{}, err
	}
	var next time.Time
	if st, ok := r.Syncer.FlagState(req.NamespacedName); !ok || st.ShadowedBy == nil {
		// A flag that is not served because an older one has its key has no schedule
		// steps taking effect either.
		var err error
		if next, err = r.reconcileSchedule(ctx, f); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.reconcileStatus(ctx, f, &base.Status); err != nil {
		return ctrl.Result{}, err
	}
	if !next.IsZero() {
		return ctrl.Result{RequeueAfter: max(next.Sub(r.now()), 0)}, nil
	}
	return ctrl.Result{}, nil
}

// auditDue reports whether reconciling f may write an audit record: a schedule step.
func (r *FlagReconciler) auditDue(f *v1.FeatureFlag) bool {
	if !f.DeletionTimestamp.IsZero() {
		return false
	}
	since := f.CreationTimestamp.Time
	if f.Status.LastScheduleApplied != nil && f.Status.LastScheduleApplied.After(since) {
		since = f.Status.LastScheduleApplied.Time
	}
	now := r.now()
	for _, step := range f.Spec.Schedule {
		if step.At.After(since) && !step.At.After(now) {
			return true
		}
	}
	return false
}

func (r *FlagReconciler) ensureFinalizer(ctx context.Context, f *v1.FeatureFlag) error {
	if controllerutil.ContainsFinalizer(f, v1.FinalizerAudit) {
		return nil
	}
	base := f.DeepCopy()
	controllerutil.AddFinalizer(f, v1.FinalizerAudit)
	if err := r.Client.Patch(ctx, f, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("failed to add the audit finalizer: %w", err)
	}
	return nil
}

// scheduleState is what the schedule has set by some instant.
type scheduleState struct {
	Enabled           bool            `json:"enabled"`
	RolloutPercentage *int32          `json:"rollout.percentage,omitempty"`
	Value             json.RawMessage `json:"value,omitempty"`
}

// stateThrough applies the schedule steps up to and including index i (none for i < 0).
func stateThrough(f *v1.FeatureFlag, i int) scheduleState {
	st := scheduleState{Enabled: f.Spec.Enabled}
	if f.Spec.Rollout != nil {
		st.RolloutPercentage = ptrTo(f.Spec.Rollout.Percentage)
	}
	if f.Spec.Value != nil {
		st.Value = f.Spec.Value.Raw
	}
	for _, s := range f.Spec.Schedule[:i+1] {
		if s.Enabled != nil {
			st.Enabled = *s.Enabled
		}
		if s.RolloutPercentage != nil {
			st.RolloutPercentage = ptrTo(*s.RolloutPercentage)
		}
		if s.Value != nil {
			st.Value = s.Value.Raw
		}
	}
	return st
}

func (s scheduleState) values() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(mustJSON(s), &m)
	return m
}

// reconcileSchedule records, once each, the schedule steps that took effect since the last
// recorded one (steps due before the flag was created took effect with its creation, which is
// audited as such). It returns when the next step is due, or zero.
func (r *FlagReconciler) reconcileSchedule(ctx context.Context, f *v1.FeatureFlag) (time.Time, error) {
	now := r.now()
	since := f.CreationTimestamp.Time
	if f.Status.LastScheduleApplied != nil && f.Status.LastScheduleApplied.After(since) {
		since = f.Status.LastScheduleApplied.Time
	}
	f.Status.NextScheduleAt = nil
	var next time.Time
	for i, step := range f.Spec.Schedule {
		at := step.At.Time
		if at.After(now) {
			next = at
			f.Status.NextScheduleAt = &metav1.Time{Time: at}
			break
		}
		if !at.After(since) {
			continue
		}
		stamp := at.UTC().Format(time.RFC3339Nano)
		rec, err := writeRecord(ctx, r.Audit, at, audit.Change{Action: audit.ActionFlagScheduleApplied, Actor: r.Actors.Self,
			Object: objectRef(KindFeatureFlag, f), Discriminator: stamp,
			Before: stateThrough(f, i-1).values(), After: stateThrough(f, i).values()})
		if err != nil {
			return time.Time{}, err
		}
		r.Recorder.Eventf(f, nil, corev1.EventTypeNormal, v1.EventReasonScheduleApplied, "Schedule",
			"the schedule step at %s took effect: %s", stamp, describeChange(rec.ChangedKeys, rec.After))
		f.Status.LastScheduleApplied = &metav1.Time{Time: at}
	}
	return next, nil
}

func describeChange(keys []string, after map[string]json.RawMessage) string {
	if len(keys) == 0 {
		return "no change"
	}
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += k + "=" + string(after[k])
	}
	return out
}

// reconcileStatus reports whether the spec is served, and the active override counts, as the
// store has them; a flag that is not served as written is also Stalled (see setHealth). It
// leaves the status alone until the store has seen the flag's generation: the Syncer's
// notification enqueues the flag again then.
func (r *FlagReconciler) reconcileStatus(ctx context.Context, f *v1.FeatureFlag, old *v1.FeatureFlagStatus) error {
	st, ok := r.Syncer.FlagState(client.ObjectKeyFromObject(f))
	if !ok || st.Generation != f.Generation {
		return nil
	}
	if st.ShadowedBy != nil {
		f.Status.UserOverrides, f.Status.DeviceOverrides = 0, 0
		ready := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1.ReasonDuplicateKey,
			ObservedGeneration: f.Generation, Message: fmt.Sprintf("the key %q is also the key of FeatureFlag %s, which is older and served instead; "+
				"delete this flag, or create it again with another spec.key", st.Key, st.ShadowedBy)}
		if prev := apimeta.FindStatusCondition(old.Conditions, v1.ConditionReady); prev == nil || prev.Message != ready.Message {
			r.Recorder.Eventf(f, nil, corev1.EventTypeWarning, v1.EventReasonDuplicateKey, "Validate", "%s", ready.Message)
		}
		apimeta.SetStatusCondition(&f.Status.Conditions, ready)
		setHealth(&f.Status.Conditions, f.Generation, abnormal{v1.ReasonDuplicateKey, ready.Message}, none)
		f.Status.ObservedGeneration = f.Generation
		return nil
	}
	users, err := r.activeOverrides(ctx, f, st.Key, KindUserFlagOverride)
	if err != nil {
		return err
	}
	devices, err := r.activeOverrides(ctx, f, st.Key, KindDeviceFlagOverride)
	if err != nil {
		return err
	}
	f.Status.UserOverrides, f.Status.DeviceOverrides = users, devices
	setActiveOverrides("user", f.Namespace, st.Key, users)
	setActiveOverrides("device", f.Namespace, st.Key, devices)

	ready := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled,
		ObservedGeneration: f.Generation, Message: fmt.Sprintf("serving generation %d", f.Generation)}
	stalled := none
	if st.Err != nil {
		ready.Status, ready.Reason = metav1.ConditionFalse, v1.ReasonInvalidSpec
		ready.Message = fmt.Sprintf("generation %d is not served: %v", f.Generation, st.Err)
		if st.ServingGeneration > 0 {
			ready.Message += fmt.Sprintf("; the evaluator keeps serving generation %d, the last valid version", st.ServingGeneration)
		} else {
			ready.Message += "; the flag is not served (no valid version is known since the manager started)"
		}
		if prev := apimeta.FindStatusCondition(old.Conditions, v1.ConditionReady); prev == nil || prev.Message != ready.Message {
			r.Recorder.Eventf(f, nil, corev1.EventTypeWarning, v1.EventReasonInvalidSpec, "Validate", "%s", ready.Message)
		}
		stalled = abnormal{v1.ReasonInvalidSpec, ready.Message}
	}
	apimeta.SetStatusCondition(&f.Status.Conditions, ready)
	setHealth(&f.Status.Conditions, f.Generation, stalled, none)
	f.Status.ObservedGeneration = f.Generation
	return nil
}

// activeOverrides counts the override objects of kind whose entry for the flag's key the
// store serves. It only reads the store: the sync controllers keep it current, and the store
// source enqueues the flag again when a store write changes an effective override of the flag.
func (r *FlagReconciler) activeOverrides(ctx context.Context, f *v1.FeatureFlag, key string, kind Kind) (int32, error) {
	list := kind.NewList()
	if err := r.Client.List(ctx, list, client.InNamespace(f.Namespace), client.MatchingFields{IndexFlagKey: key},
		client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("failed to list the %s objects of flag %s: %w", kind, key, err)
	}
	objs, err := objectsOf(list)
	if err != nil {
		return 0, err
	}
	snap := r.Syncer.Store().Snapshot()
	var n int32
	for _, o := range objs {
		st, ok := snap.OverrideStatus(kind.subjectKind(), o.GetNamespace(), o.GetName())
		if ok && slices.Contains(st.Applied, key) {
			n++
		}
	}
	return n, nil
}

// SetupWithManager registers the reconciler. It watches flags, and follows the store, whose
// changes move the override counts (see storeSource).
func (r *FlagReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).For(&v1.FeatureFlag{}).Named("featureflag").
		WatchesRawSource(&storeSource{syncer: r.Syncer, kind: KindFeatureFlag, reader: mgr.GetCache(), requests: flagsOfChange(r.Syncer)}).
		Complete(r)
}
