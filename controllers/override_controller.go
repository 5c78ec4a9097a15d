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
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

// +kubebuilder:rbac:groups=flagops.dev,resources=userflagoverrides;deviceflagoverrides,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=flagops.dev,resources=userflagoverrides/status;deviceflagoverrides/status,verbs=patch
// +kubebuilder:rbac:groups=flagops.dev,resources=userflagoverrides/finalizers;deviceflagoverrides/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// override gives uniform access to a UserFlagOverride or a DeviceFlagOverride.
type override struct {
	obj     client.Object
	kind    Kind
	subject string
	spec    *v1.FlagOverrideSpec
	status  *v1.FlagOverrideStatus
}

func wrapOverride(obj client.Object) override {
	switch o := obj.(type) {
	case *v1.UserFlagOverride:
		return override{obj: o, kind: KindUserFlagOverride, subject: o.Spec.UserID, spec: &o.Spec.FlagOverrideSpec, status: &o.Status}
	case *v1.DeviceFlagOverride:
		return override{obj: o, kind: KindDeviceFlagOverride, subject: o.Spec.DeviceID, spec: &o.Spec.FlagOverrideSpec, status: &o.Status}
	default:
		panic(fmt.Sprintf("flagops: %T is not an override", obj))
	}
}

func (o override) auditSubject() *audit.Subject {
	if o.kind == KindDeviceFlagOverride {
		return &audit.Subject{DeviceID: o.subject}
	}
	return &audit.Subject{UserID: o.subject}
}

func (o override) metricKind() string {
	if o.kind == KindDeviceFlagOverride {
		return "device"
	}
	return "user"
}

// overrideWorkers is how many overrides of one kind the OverrideReconciler reconciles at
// once. Each new override costs two writes (the finalizer, then the status), so one worker
// made a bulk import wait on the API server's round trips one override at a time: about 33
// overrides a second on envtest, an hour for 100,000 (hack/scale, docs/capacity.md). One
// object is never reconciled by two workers at once, and a reconcile shares nothing but the
// store's snapshots and the clients, so the workers need no lock.
const overrideWorkers = 16

// OverrideReconciler runs on the elected leader. It holds the audit finalizer, audits every
// change, reports status and events, and cleans up expired overrides.
type OverrideReconciler struct {
	Client   client.Client
	Syncer   *Syncer
	Kind     Kind
	Recorder events.EventRecorder
	Audit    audit.Sink
	Actors   Actors
	// Auditor records the changes themselves; an expiry waits until it has recorded the
	// change it applies to. Nil waits for nothing.
	Auditor *Auditor
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (r *OverrideReconciler) now() time.Time { return nowOr(r.Now) }

// Reconcile brings one override's finalizer, audit trail, status and expiry up to date.
func (r *OverrideReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	if !r.Syncer.Synced() {
		// The store is not complete yet; the store source enqueues every override once it is.
		return ctrl.Result{}, nil
	}
	cached := r.Kind.NewObject()
	if err := r.Client.Get(ctx, req.NamespacedName, cached); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	o := wrapOverride(cached)
	if r.auditDue(o) {
		if !auditedUpTo(r.Auditor, o.obj) {
			return ctrl.Result{RequeueAfter: auditWait}, nil
		}
		// About to write an audit record: decide on the object as the API server has it, not
		// as the cache has it, so that a new leader never repeats a record that the previous
		// one wrote and persisted just before the failover.
		fresh, err := refetch(ctx, r.Actors.APIReader, o.obj)
		if err != nil || fresh == nil {
			return ctrl.Result{}, err
		}
		o = wrapOverride(fresh)
	}
	if !o.obj.GetDeletionTimestamp().IsZero() {
		// The Auditor records the deletion and releases the finalizer.
		return ctrl.Result{}, nil
	}

	base := o.obj.DeepCopyObject().(client.Object)
	oldStatus := *wrapOverride(base).status
	defer func() {
		if retErr == nil && o.obj.GetDeletionTimestamp().IsZero() && !equality.Semantic.DeepEqual(oldStatus, *o.status) {
			if err := patchStatus(ctx, r.Client, o.obj, base); err != nil {
				retErr = fmt.Errorf("failed to patch the status of %s %s: %w", r.Kind, req.NamespacedName, err)
			}
		}
	}()

	expired := o.spec.ExpiresAt != nil && !r.now().Before(o.spec.ExpiresAt.Time)
	if err := r.ensureFinalizer(ctx, o, expired); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reconcileStatus(ctx, o, oldStatus); err != nil {
		return ctrl.Result{}, err
	}
	if expired {
		return ctrl.Result{}, r.reconcileExpiry(ctx, o, oldStatus, base)
	}
	if o.spec.ExpiresAt != nil {
		return ctrl.Result{RequeueAfter: o.spec.ExpiresAt.Sub(r.now())}, nil
	}
	return ctrl.Result{}, nil
}

// auditDue reports whether reconciling o may write an audit record: its expiry.
func (r *OverrideReconciler) auditDue(o override) bool {
	if !o.obj.GetDeletionTimestamp().IsZero() {
		return false
	}
	expired := o.spec.ExpiresAt != nil && !r.now().Before(o.spec.ExpiresAt.Time)
	return expired && !apimeta.IsStatusConditionTrue(o.status.Conditions, v1.ConditionExpired)
}

// ensureFinalizer adds the audit finalizer, except to an expired override that is about to be
// deleted by the expiry cleanup.
func (r *OverrideReconciler) ensureFinalizer(ctx context.Context, o override, expired bool) error {
	if controllerutil.ContainsFinalizer(o.obj, v1.FinalizerAudit) || (expired && r.deletesAtExpiry(o)) {
		return nil
	}
	base := o.obj.DeepCopyObject().(client.Object)
	controllerutil.AddFinalizer(o.obj, v1.FinalizerAudit)
	if err := r.Client.Patch(ctx, o.obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("failed to add the audit finalizer: %w", err)
	}
	return nil
}

func (r *OverrideReconciler) deletesAtExpiry(o override) bool {
	return !onExpiryOf(o.obj, o.spec.OnExpiry).retain
}

func (r *OverrideReconciler) removeFinalizer(ctx context.Context, obj client.Object) error {
	base := obj.DeepCopyObject().(client.Object)
	if !controllerutil.RemoveFinalizer(obj, v1.FinalizerAudit) {
		return nil
	}
	if err := r.Client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to remove the audit finalizer: %w", err)
	}
	return nil
}

// reconcileStatus reports what the evaluator serves from the override, and records events
// for new invalid entries and conflicts. It only reads the store, and leaves the status alone
// until the store holds the override's generation: the Syncer's notification enqueues the
// override again then.
func (r *OverrideReconciler) reconcileStatus(_ context.Context, o override, old v1.FlagOverrideStatus) error {
	gen := o.obj.GetGeneration()
	if synced, ok := r.Syncer.SyncedGeneration(o.kind, client.ObjectKeyFromObject(o.obj)); !ok || synced != gen {
		return nil
	}
	st, _ := r.Syncer.Store().Snapshot().OverrideStatus(o.kind.subjectKind(), o.obj.GetNamespace(), o.obj.GetName())

	o.status.ObservedGeneration = gen
	o.status.FlagCount = int32(len(o.spec.Flags))
	o.status.AppliedKeys = slices.Sorted(slices.Values(st.Applied))
	o.status.InvalidKeys = nil
	for _, e := range st.Invalid {
		o.status.InvalidKeys = append(o.status.InvalidKeys, v1.InvalidKey{Key: e.Key, Message: e.Message})
	}
	slices.SortFunc(o.status.InvalidKeys, func(a, b v1.InvalidKey) int { return strings.Compare(a.Key, b.Key) })
	for _, k := range o.status.InvalidKeys {
		if i := slices.IndexFunc(old.InvalidKeys, func(x v1.InvalidKey) bool { return x.Key == k.Key }); i >= 0 && old.InvalidKeys[i].Message == k.Message {
			continue
		}
		reason := v1.EventReasonInvalidValue
		if k.Message == evaluator.MessageUnknownFlag {
			reason = v1.EventReasonUnknownFlag
		}
		r.Recorder.Eventf(o.obj, nil, corev1.EventTypeWarning, reason, "Validate", "flag %s is not served: %s", k.Key, k.Message)
	}

	conflict := metav1.Condition{Type: v1.ConditionConflict, Status: metav1.ConditionFalse, Reason: v1.ReasonNoConflict,
		Message: "no other override sets these keys for this subject", ObservedGeneration: gen}
	if len(st.Lost) > 0 {
		conflict.Status, conflict.Reason = metav1.ConditionTrue, v1.ReasonOverrideConflict
		conflict.Message = "another override wins (older, or lower name): " + strings.Join(sortedLost(st.Lost), "; ")
	}
	if prev := apimeta.FindStatusCondition(old.Conditions, v1.ConditionConflict); conflict.Status == metav1.ConditionTrue &&
		(prev == nil || prev.Status != metav1.ConditionTrue || prev.Message != conflict.Message) {
		r.Recorder.Eventf(o.obj, nil, corev1.EventTypeWarning, v1.EventReasonOverrideConflict, "Validate", "%s", conflict.Message)
	}
	apimeta.SetStatusCondition(&o.status.Conditions, conflict)

	apimeta.SetStatusCondition(&o.status.Conditions, overrideReady(o, st, gen))
	stalled, reconciling := overrideHealth(o, st, conflict)
	setHealth(&o.status.Conditions, gen, stalled, reconciling)
	if apimeta.FindStatusCondition(o.status.Conditions, v1.ConditionExpired) == nil || o.spec.ExpiresAt == nil || r.now().Before(o.spec.ExpiresAt.Time) {
		msg := "the override does not expire"
		if at := o.spec.ExpiresAt; at != nil {
			msg = onExpiryOf(o.obj, o.spec.OnExpiry).message(at.UTC().Format(time.RFC3339), false)
		}
		apimeta.SetStatusCondition(&o.status.Conditions, metav1.Condition{Type: v1.ConditionExpired, Status: metav1.ConditionFalse,
			Reason: v1.ReasonNotExpired, Message: msg, ObservedGeneration: gen})
	}
	return nil
}

// overrideReady is the Ready condition of o: True when every entry is served, False
// (PartiallyApplied) naming each entry that is not and why.
func overrideReady(o override, st evaluator.OverrideStatus, gen int64) metav1.Condition {
	ready := metav1.Condition{Type: v1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1.ReasonReconciled, ObservedGeneration: gen,
		Message: fmt.Sprintf("%d of %d flags applied", len(o.status.AppliedKeys), len(o.spec.Flags))}
	var parts []string
	for _, k := range o.status.InvalidKeys {
		parts = append(parts, k.Key+": "+k.Message)
	}
	parts = append(parts, sortedLost(st.Lost)...)
	if len(parts) > 0 {
		ready.Status, ready.Reason = metav1.ConditionFalse, v1.ReasonPartiallyApplied
		ready.Message = fmt.Sprintf("%d of %d flags are not served: %s", len(parts), len(o.spec.Flags), strings.Join(parts, "; "))
	}
	if o.spec.Enabled != nil && !*o.spec.Enabled {
		ready.Message = "the override is disabled (spec.enabled is false); no flag is served from it"
	}
	return ready
}

// overrideHealth decides the kstatus conditions of o (see setHealth). An entry whose value
// its flag rejects, or a lost conflict, needs a person: Stalled. An entry that names a flag
// that does not exist may only be waiting for it, as when a GitOps tool applies the flag
// and its overrides together: Reconciling.
func overrideHealth(o override, st evaluator.OverrideStatus, conflict metav1.Condition) (stalled, reconciling abnormal) {
	var invalid, unknown []string
	for _, k := range o.status.InvalidKeys {
		if k.Message == evaluator.MessageUnknownFlag {
			unknown = append(unknown, k.Key)
		} else {
			invalid = append(invalid, k.Key+": "+k.Message)
		}
	}
	switch {
	case len(invalid) > 0:
		stalled = abnormal{v1.ReasonInvalidValue, "these entries are not served until they or their flags change: " + strings.Join(invalid, "; ")}
	case len(st.Lost) > 0:
		stalled = abnormal{v1.ReasonOverrideConflict, conflict.Message}
	}
	if len(unknown) > 0 {
		reconciling = abnormal{v1.ReasonUnknownFlag, fmt.Sprintf("waiting for these flags to exist in namespace %s; their entries are not served until then: %s",
			o.obj.GetNamespace(), strings.Join(unknown, ", "))}
	}
	return stalled, reconciling
}

// sortedLost describes the entries that lose a conflict, sorted.
func sortedLost(lost []evaluator.LostEntry) []string {
	var parts []string
	for _, l := range lost {
		parts = append(parts, fmt.Sprintf("%s is served from %s/%s", l.Key, l.Winner.Namespace, l.Winner.Name))
	}
	slices.Sort(parts)
	return parts
}

// reconcileExpiry records the expiry once, then deletes the override, or keeps it when
// onExpiryOf says so. Either way it is Expired=True and Ready=True with reason Expired: it is
// applied as written, by not being served (the evaluator ignores expired overrides), and
// kstatus reads it as Current, not as work in progress or a failure.
func (r *OverrideReconciler) reconcileExpiry(ctx context.Context, o override, old v1.FlagOverrideStatus, base client.Object) error {
	gen := o.obj.GetGeneration()
	policy := onExpiryOf(o.obj, o.spec.OnExpiry)
	msg := policy.message(o.spec.ExpiresAt.UTC().Format(time.RFC3339), true)
	if !apimeta.IsStatusConditionTrue(old.Conditions, v1.ConditionExpired) {
		action := o.kind.action("expired")
		rec, err := writeRecord(ctx, r.Audit, o.spec.ExpiresAt.Time, audit.Change{Action: action, Actor: r.Actors.Self,
			Object: objectRef(o.kind, o.obj), Subject: o.auditSubject(), Before: overrideValues(o.spec)})
		if err != nil {
			return err
		}
		countOverrideChange(o.metricKind(), action, rec.ChangedKeys)
		r.Recorder.Eventf(o.obj, nil, corev1.EventTypeNormal, v1.EventReasonOverrideExpired, "Expire", "%s", msg)
	}
	set := func(t string, status metav1.ConditionStatus) {
		apimeta.SetStatusCondition(&o.status.Conditions, metav1.Condition{Type: t, Status: status,
			Reason: v1.ReasonExpired, Message: msg, ObservedGeneration: gen})
	}
	set(v1.ConditionExpired, metav1.ConditionTrue)
	set(v1.ConditionReady, metav1.ConditionTrue)
	// Entries that are not served for other reasons no longer matter.
	setHealth(&o.status.Conditions, gen, none, none)
	if policy.retain {
		return nil
	}
	// Persist Expired=True before deleting, so that a crash in between never records the
	// expiry twice; then release the finalizer so that the deletion is not audited again.
	if err := patchStatus(ctx, r.Client, o.obj, base); err != nil {
		return fmt.Errorf("failed to record the expiry in status: %w", err)
	}
	if err := r.removeFinalizer(ctx, o.obj); err != nil {
		return err
	}
	if err := r.Client.Delete(ctx, o.obj, client.Preconditions{UID: ptrTo(o.obj.GetUID())}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to delete the expired override: %w", err)
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// statusWriteTimeout bounds a status write that must outlive the manager's shutdown.
const statusWriteTimeout = 10 * time.Second

// patchStatus patches the status of obj from base. The finalizer patch earlier in the same
// reconcile may have moved the resourceVersion; the merge patch must not carry the old one,
// which the API server would take as a precondition and reject as a conflict.
//
// The status records what was audited, so it is written even while the manager shuts down:
// a leader that stops between an audit record and this write would make its successor
// write the record again.
func patchStatus(ctx context.Context, c client.Client, obj, base client.Object) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	base.SetResourceVersion(obj.GetResourceVersion())
	return client.IgnoreNotFound(c.Status().Patch(ctx, obj, client.MergeFrom(base), client.FieldOwner(FieldOwner)))
}

// refetch reads obj from the API server, bypassing the cache. It returns nil when the object
// is gone.
func refetch(ctx context.Context, reader client.Reader, obj client.Object) (client.Object, error) {
	fresh := obj.DeepCopyObject().(client.Object)
	if err := reader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to read %s/%s from the API server: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return fresh, nil
}

// SetupWithManager registers the reconciler. It watches its kind, and follows the store,
// whose changes to other objects (the flags its overrides name, the other overrides of the
// same subject, which can start or end a conflict) move its status (see storeSource).
func (r *OverrideReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(r.Kind.NewObject()).
		Named(strings.ToLower(string(r.Kind))).
		WithOptions(controller.Options{MaxConcurrentReconciles: overrideWorkers}).
		WatchesRawSource(&storeSource{syncer: r.Syncer, kind: r.Kind, reader: mgr.GetCache(), requests: overridesOfChange(mgr.GetCache(), r.Kind)}).
		Complete(r)
}
