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
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/internal/audit"
)

// +kubebuilder:rbac:groups=flagops.dev,resources=auditcheckpoints,verbs=get;list;create;update;delete

// auditWorkers is how many objects the Auditor audits at once. The versions of one object
// are always audited one after the other, in commit order.
const auditWorkers = 16

// Auditor writes the audit trail of every FeatureFlag, UserFlagOverride and
// DeviceFlagOverride on the elected leader: one record per committed version of the spec,
// and one per deletion.
//
// It sees versions through informer event handlers, which the watch feeds every committed
// version of an object in order (a reconcile queue would fold versions that land close
// together into one). A version whose generation follows the last audited one gets a record
// of its own, with the actor its webhook stamp names. When generations are missing in
// between (written while no leader watched, or while the watch had to list again), one
// record marked Coalesced covers the whole range with the net change, and names the writers
// known for it without attributing the change to any one of them.
//
// What was audited is kept per object in an AuditCheckpoint: the generation and values last
// recorded, and the records being written. Records are stored there before they are sent
// and cleared once the sink has them, so that a leader that stops in between leaves its
// successor the same records, with the same deterministic IDs, to send again; no generation
// is ever covered twice.
type Auditor struct {
	// Client writes checkpoints and releases the audit finalizer.
	Client client.Client
	// Reader reads the API server without the cache.
	Reader client.Reader
	// Informers are the manager's cache, whose informers deliver the versions.
	Informers cache.Informers
	// Sink receives the records.
	Sink   audit.Sink
	Actors Actors
	// Recorder records the Event of each audited change once the sink has its record (see
	// changeEvents); nil records none.
	Recorder events.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Hold, when set, keeps the Auditor from loading its checkpoints and auditing until it
	// is closed; it follows the informers from the start all the same, so that it misses
	// no version. The manager holds it until its initial sync is complete, so that a cold
	// start's backlog of audits does not delay the replica's readiness.
	Hold <-chan struct{}
	// LeaseHeld reports whether this replica certainly still leads (LeaseFence.Held, or
	// always true without leader election); nil is never certain. While it is, a version
	// committed after the checkpoints were loaded needs no read of its object before its
	// first checkpoint (see certainlyNew).
	LeaseHeld func() bool

	log    logr.Logger
	events *changeEvents
	queue  workqueue.TypedRateLimitingInterface[types.UID]

	mu      sync.Mutex
	started bool
	queued  map[types.UID][]auditVersion
	ckpts   map[types.UID]*checkpoint
	// loadedRV is the resourceVersion of the list that loaded ckpts.
	loadedRV string
}

// auditVersion is one committed version of an object, or its disappearance.
type auditVersion struct {
	kind Kind
	obj  client.Object
	gone bool
}

// checkpoint is an AuditCheckpoint as the Auditor holds it in memory, named
// checkpointName(kind, uid) after its object.
type checkpoint struct {
	namespace       string
	resourceVersion string
	generation      int64
	auditedAt       time.Time
	// values are the audited values at generation as the AuditCheckpoint stores them,
	// gzip-compressed JSON (valuesOf reads them): the leader holds one per object, and a map
	// each took four times as much (hack/scale, docs/capacity.md).
	values  []byte
	pending []audit.Record
}

// valuesOf returns the audited values that ck holds, or none when ck is nil.
func valuesOf(ck *checkpoint) (map[string]json.RawMessage, error) {
	var out map[string]json.RawMessage
	if ck == nil {
		return out, nil
	}
	if err := gunzipJSON(ck.values, &out); err != nil {
		return nil, fmt.Errorf("the audited values of checkpoint %s: %w", ck.namespace, err)
	}
	return out, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: only the leader audits.
func (a *Auditor) NeedLeaderElection() bool { return true }

func (a *Auditor) now() time.Time { return nowOr(a.Now) }

// Start loads the checkpoints, follows the informers and audits until ctx is done.
func (a *Auditor) Start(ctx context.Context) error {
	a.log = logf.FromContext(ctx).WithName("auditor")
	a.events = newChangeEvents(a.Recorder, a.Reader, DedupWindow)
	a.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
		workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "auditor"})
	defer a.queue.ShutDown()
	a.mu.Lock()
	a.queued = map[types.UID][]auditVersion{}
	a.mu.Unlock()

	for _, kind := range Kinds {
		inf, err := a.Informers.GetInformer(ctx, kind.NewObject())
		if err != nil {
			return fmt.Errorf("failed to get the %s informer: %w", kind, err)
		}
		reg, err := inf.AddEventHandler(a.handler(kind))
		if err != nil {
			return fmt.Errorf("failed to follow %s: %w", kind, err)
		}
		defer func() { _ = inf.RemoveEventHandler(reg) }()
	}
	// The handlers queue every version from here on; the work waits for Hold.
	if a.Hold != nil {
		select {
		case <-a.Hold:
		case <-ctx.Done():
			return nil
		}
	}
	ckpts, loadedRV, err := a.load(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.ckpts, a.loadedRV, a.started = ckpts, loadedRV, true
	a.mu.Unlock()

	var wg sync.WaitGroup
	for range auditWorkers {
		wg.Go(func() {
			for a.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	return nil
}

// Audited reports whether every change of the object with uid up to generation gen is in
// the audit trail. The lifecycle controllers wait for it before they record an expiry or a
// schedule step, so that those follow the changes they apply to.
func (a *Auditor) Audited(uid types.UID, gen int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ck := a.ckpts[uid]
	return ck != nil && ck.generation >= gen && len(ck.pending) == 0
}

// load reads every AuditCheckpoint from the API server, a page at a time, and returns them
// with the resourceVersion of the list (every page is of the same snapshot).
func (a *Auditor) load(ctx context.Context) (map[types.UID]*checkpoint, string, error) {
	out := map[types.UID]*checkpoint{}
	list := &v1.AuditCheckpointList{}
	rv := ""
	for {
		if err := a.Reader.List(ctx, list, client.Limit(500), client.Continue(list.Continue)); err != nil {
			return nil, "", fmt.Errorf("failed to list the audit checkpoints: %w", err)
		}
		if rv == "" {
			rv = list.ResourceVersion
		}
		for i := range list.Items {
			ck, err := decodeCheckpoint(&list.Items[i])
			if err != nil {
				return nil, "", err
			}
			out[types.UID(list.Items[i].Spec.UID)] = ck
		}
		if list.Continue == "" {
			return out, rv, nil
		}
	}
}

func (a *Auditor) handler(kind Kind) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { a.enqueue(kind, obj, false) },
		UpdateFunc: func(oldObj, newObj any) {
			o, okOld := oldObj.(client.Object)
			n, okNew := newObj.(client.Object)
			// Status, finalizer and annotation writes leave the generation alone.
			if okOld && okNew && o.GetGeneration() == n.GetGeneration() {
				return
			}
			a.enqueue(kind, newObj, false)
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			a.enqueue(kind, obj, true)
		},
	}
}

func (a *Auditor) enqueue(kind Kind, obj any, gone bool) {
	o, ok := obj.(client.Object)
	if !ok {
		return
	}
	a.mu.Lock()
	a.queued[o.GetUID()] = append(a.queued[o.GetUID()], auditVersion{kind: kind, obj: o, gone: gone})
	a.mu.Unlock()
	a.queue.Add(o.GetUID())
}

// next audits the queued versions of one object, in order. A failure puts the versions not
// yet audited back in front of any that arrived meanwhile, and retries later.
func (a *Auditor) next(ctx context.Context) bool {
	uid, shutdown := a.queue.Get()
	if shutdown {
		return false
	}
	defer a.queue.Done(uid)
	a.mu.Lock()
	versions := a.queued[uid]
	delete(a.queued, uid)
	a.mu.Unlock()
	for i, v := range versions {
		if err := a.audit(ctx, v); errors.Is(err, errAuditedElsewhere) {
			// A leader that was paused past its lease resumes with versions it had queued;
			// the one that took over has already recorded them, and the deletion.
			a.log.Info("Another leader finished auditing the object; dropping the versions queued here",
				"kind", v.kind, "namespace", v.obj.GetNamespace(), "name", v.obj.GetName())
			a.mu.Lock()
			delete(a.ckpts, uid)
			a.mu.Unlock()
			break
		} else if err != nil {
			a.mu.Lock()
			a.queued[uid] = append(versions[i:], a.queued[uid]...)
			a.mu.Unlock()
			if ctx.Err() == nil {
				a.log.Error(err, "audit failed; retrying", "kind", v.kind, "namespace", v.obj.GetNamespace(), "name", v.obj.GetName())
			}
			a.queue.AddRateLimited(uid)
			return true
		}
	}
	a.queue.Forget(uid)
	return true
}

// audit writes the records of one version.
func (a *Auditor) audit(ctx context.Context, v auditVersion) error {
	uid := v.obj.GetUID()
	ck := a.checkpointOf(uid)
	if ck != nil && len(ck.pending) > 0 {
		// Left by a leader that stopped while sending them.
		if err := a.send(ctx, v, ck, true); err != nil {
			return err
		}
		if ck = a.checkpointOf(uid); ck == nil {
			return nil
		}
	}
	if ck == nil {
		var err error
		if ck, err = migrated(v.obj); err != nil {
			return err
		}
	}
	if v.gone {
		if ck == nil {
			return nil
		}
		recs, err := a.goneRecords(ctx, v, ck)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return a.drop(ctx, v, ck)
		}
		next := *ck
		next.pending, next.auditedAt = recs, a.now()
		return a.store(ctx, v, ck, &next)
	}
	recs, gen, values, err := a.records(ctx, v, ck)
	if err != nil {
		return err
	}
	if gen == 0 {
		if ck != nil && ck.resourceVersion == "" {
			// Nothing new since what status.audited holds: move it into a checkpoint.
			next := *ck
			return a.store(ctx, v, ck, &next)
		}
		return nil
	}
	next := &checkpoint{generation: gen, values: values, pending: recs}
	if ck != nil {
		next.resourceVersion, next.auditedAt = ck.resourceVersion, ck.auditedAt
	}
	if len(recs) > 0 {
		next.auditedAt = a.now()
	}
	return a.store(ctx, v, ck, next)
}

// store saves next, which follows ck, as the checkpoint of v's object, then sends its
// pending records.
func (a *Auditor) store(ctx context.Context, v auditVersion, ck, next *checkpoint) error {
	if err := a.save(ctx, v, next); err != nil {
		return err
	}
	if ck != nil && ck.resourceVersion == "" && deprecatedAudited(v.obj) != nil {
		// The checkpoint now holds what status.audited held. v.obj is the informer's cached
		// object, which must not be written: the patch response is decoded into a copy.
		if err := a.Client.Status().Patch(ctx, v.obj.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, []byte(`{"status":{"audited":null}}`)),
			client.FieldOwner(FieldOwner)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("failed to remove status.audited: %w", err)
		}
	}
	return a.send(ctx, v, next, false)
}

// records returns the records of version v after checkpoint ck (nil if none), the
// generation the checkpoint moves to (0 when v holds nothing new) and the values there, as
// the checkpoint holds them.
func (a *Auditor) records(ctx context.Context, v auditVersion, ck *checkpoint) ([]audit.Record, int64, []byte, error) {
	obj := v.obj
	gen := obj.GetGeneration()
	deleting := !obj.GetDeletionTimestamp().IsZero()
	// Marking an object for deletion moves its generation on without a spec write.
	specGen := gen
	if deleting && gen > 1 {
		specGen = gen - 1
	}
	var last int64
	if ck != nil {
		last = ck.generation
	}
	if gen <= last || (deleting && !controllerutil.ContainsFinalizer(obj, v1.FinalizerAudit)) {
		// Audited already, or deleted by the expiry cleanup, which records the expiry instead.
		return nil, 0, nil, nil
	}
	before, err := valuesOf(ck)
	if err != nil {
		return nil, 0, nil, err
	}
	after, err := auditedValues(obj)
	if err != nil {
		return nil, 0, nil, err
	}
	packed, err := gzipJSON(after)
	if err != nil {
		return nil, 0, nil, err
	}
	var recs []audit.Record
	if specGen > last {
		verb := "updated"
		if ck == nil {
			verb = "created"
		}
		ref := objectRef(v.kind, obj)
		ref.Generation = specGen
		c := audit.Change{Action: v.kind.action(verb), Object: ref, Subject: subjectOf(obj), Before: before, After: after}
		if specGen == last+1 {
			c.Actor, c.Request = a.Actors.OfGeneration(ctx, v.kind, obj, specGen)
		} else {
			c.Coalesced = &audit.Coalesced{FromGeneration: last + 1, ToGeneration: specGen, Actors: a.knownActors(ctx, v.kind, obj, specGen, ck)}
		}
		// A version that changed no audited value has no record; a create always has one,
		// and so does a coalesced range: its versions changed values even when the net
		// change is nothing (a flag turned on and off again), and the trail must cover them.
		if rec := audit.NewRecord(a.now(), c); ck == nil || c.Coalesced != nil || len(rec.ChangedKeys) > 0 {
			recs = append(recs, rec)
		}
	}
	if deleting {
		actor, req := a.Actors.OfDeletion(ctx, v.kind, obj)
		recs = append(recs, audit.NewRecord(obj.GetDeletionTimestamp().Time, audit.Change{Action: v.kind.action("deleted"),
			Actor: actor, Request: req, Object: objectRef(v.kind, obj), Subject: subjectOf(obj), Before: after}))
	}
	return recs, gen, packed, nil
}

// goneRecords returns the deletion record of an object that disappeared without the audit
// finalizer, unless the expiry cleanup deleted it, whose expiry record stands for it.
func (a *Auditor) goneRecords(ctx context.Context, v auditVersion, ck *checkpoint) ([]audit.Record, error) {
	if ck == nil {
		return nil, nil
	}
	if v.kind != KindFeatureFlag && apimeta.IsStatusConditionTrue(wrapOverride(v.obj).status.Conditions, v1.ConditionExpired) {
		return nil, nil
	}
	before, err := valuesOf(ck)
	if err != nil {
		return nil, err
	}
	actor, req := a.Actors.OfDeletion(ctx, v.kind, v.obj)
	return []audit.Record{audit.NewRecord(a.now(), audit.Change{Action: v.kind.action("deleted"),
		Actor: actor, Request: req, Object: objectRef(v.kind, v.obj), Subject: subjectOf(v.obj), Before: before})}, nil
}

// knownActors names who is known to have written obj's spec in a coalesced range: the
// actor of the last version, then the other field managers that own spec fields and
// certainly wrote after ck's record.
func (a *Auditor) knownActors(ctx context.Context, kind Kind, obj client.Object, specGen int64, ck *checkpoint) []audit.Actor {
	last, _ := a.Actors.OfGeneration(ctx, kind, obj, specGen)
	out := []audit.Actor{last}
	entries := obj.GetManagedFields()
	if len(entries) == 0 {
		fresh := kind.NewObject()
		if err := a.Reader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err == nil {
			entries = fresh.GetManagedFields()
		}
	}
	// managedFields keeps, per manager, only the fields it still owns and the time of its
	// latest write, in whole seconds: a manager counts when that time is certainly after the
	// last record. Writers whose fields later writers took over are not known.
	var since time.Time
	if ck != nil {
		since = ck.auditedAt
	}
	for _, e := range entries {
		if e.Manager == FieldOwner || e.Subresource != "" || e.Time == nil || e.Time.Time.Before(since) ||
			e.FieldsV1 == nil || !strings.Contains(e.FieldsV1.GetRawString(), `"f:spec"`) {
			continue
		}
		known := false
		for _, x := range out {
			known = known || x.Username == e.Manager
		}
		if !known {
			out = append(out, audit.Actor{Username: e.Manager})
		}
	}
	return out
}

// send writes the pending records of ck and records their Events, then clears them; after a
// deletion record it releases the object and drops the checkpoint, so that the deletion's
// Event is recorded while the object still exists. What follows a successful write runs
// even while the manager stops, so that a record the sink has is not sent again by the next
// leader. replayed says the records were pending before this call (see changeEvents).
func (a *Auditor) send(ctx context.Context, v auditVersion, ck *checkpoint, replayed bool) error {
	if len(ck.pending) == 0 {
		return nil
	}
	deleted := false
	for _, rec := range ck.pending {
		if err := a.Sink.Write(ctx, rec); err != nil {
			return fmt.Errorf("failed to write the %s audit record: %w", rec.Action, err)
		}
		a.events.record(ctx, rec, replayed)
		if v.kind != KindFeatureFlag {
			countOverrideChange(override{kind: v.kind}.metricKind(), rec.Action, rec.ChangedKeys)
		}
		deleted = deleted || isDeletion(rec.Action)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	if deleted {
		if err := a.release(ctx, v); err != nil {
			return err
		}
		return a.drop(ctx, v, ck)
	}
	done := *ck
	done.pending = nil
	return a.save(ctx, v, &done)
}

// release removes the audit finalizer from v's object, if it is still there.
func (a *Auditor) release(ctx context.Context, v auditVersion) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := v.kind.NewObject()
		if err := a.Reader.Get(ctx, client.ObjectKeyFromObject(v.obj), obj); err != nil || obj.GetUID() != v.obj.GetUID() {
			return client.IgnoreNotFound(err)
		}
		base := obj.DeepCopyObject().(client.Object)
		if !controllerutil.RemoveFinalizer(obj, v1.FinalizerAudit) {
			return nil
		}
		return a.Client.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
	})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to remove the audit finalizer: %w", err)
	}
	return nil
}

// save writes ck as the AuditCheckpoint of v's object. A conflict means that another leader
// moved it: the checkpoint is read again, and the version is audited again from it.
//
// A checkpoint deleted meanwhile is created again, unless the object is gone too: another
// leader then recorded its deletion and dropped the checkpoint, and save returns
// errAuditedElsewhere; so it does before it creates an object's first checkpoint when the
// object is gone (one read of the object without the cache, unless certainlyNew). In a namespace being deleted, the
// namespace controller deletes the checkpoints and nothing can be created any more: ck is
// then kept in memory only, so that the records are still sent and the deleted objects
// released, at least once rather than exactly once (a successor leader has no checkpoint
// to follow).
func (a *Auditor) save(ctx context.Context, v auditVersion, ck *checkpoint) error {
	ck.namespace = v.obj.GetNamespace()
	obj, err := ck.encode(v.kind, v.obj)
	if err != nil {
		return err
	}
	if ck.resourceVersion != "" {
		err = a.Client.Update(ctx, obj, client.FieldOwner(FieldOwner))
	}
	if ck.resourceVersion == "" || apierrors.IsNotFound(err) {
		// The checkpoint is created: the object's first, or again after it was deleted. If
		// the object is gone too, a leader that resumes after a pause past its lease would
		// otherwise record versions again after its successor recorded them and the
		// deletion and dropped the checkpoint. (An object deleted before any leader added
		// the audit finalizer has no record either way: docs/audit.md, "What it cannot see".)
		if (ck.resourceVersion != "" || !a.certainlyNew(v)) && a.gone(ctx, v) {
			return errAuditedElsewhere
		}
		obj.ResourceVersion = ""
		err = a.Client.Create(ctx, obj, client.FieldOwner(FieldOwner))
	}
	switch {
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return a.reload(ctx, v, err)
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		obj.ResourceVersion = ""
	case err != nil:
		return fmt.Errorf("failed to write the audit checkpoint %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	ck.resourceVersion = obj.ResourceVersion
	a.mu.Lock()
	a.ckpts[v.obj.GetUID()] = ck
	a.mu.Unlock()
	return nil
}

// errAuditedElsewhere says that another leader finished the object's audit trail: it
// recorded the deletion and dropped the checkpoint (found by hack/soak: a leader paused past
// its lease recorded generations again that its successor had covered).
var errAuditedElsewhere = errors.New("another leader finished auditing the object")

// certainlyNew reports whether no other leader can have finished auditing v's object, so
// that its first checkpoint needs no read of the object: this replica still holds the Lease,
// and v was committed after the list that loaded the checkpoints. That list came after this
// replica took the Lease, and so after every write of the leaders before it; one of them
// that recorded the object's deletion and dropped its checkpoint did so before the list,
// and the object then has no version after it. A leader paused past its Lease has it no
// longer, and reads the object (found by hack/soak: see errAuditedElsewhere). In a bulk
// import this spares one request per new object.
func (a *Auditor) certainlyNew(v auditVersion) bool {
	if a.LeaseHeld == nil || a.loadedRV == "" || !a.LeaseHeld() {
		return false
	}
	c, err := resourceversion.CompareResourceVersion(v.obj.GetResourceVersion(), a.loadedRV)
	return err == nil && c > 0
}

// gone reports whether v's object no longer exists (read without the cache).
func (a *Auditor) gone(ctx context.Context, v auditVersion) bool {
	cur := v.kind.NewObject()
	err := a.Reader.Get(ctx, client.ObjectKeyFromObject(v.obj), cur)
	return apierrors.IsNotFound(err) || (err == nil && cur.GetUID() != v.obj.GetUID())
}

// reload reads the checkpoint of v's object from the API server after cause, a conflict.
func (a *Auditor) reload(ctx context.Context, v auditVersion, cause error) error {
	got := &v1.AuditCheckpoint{}
	err := a.Reader.Get(ctx, client.ObjectKey{Namespace: v.obj.GetNamespace(), Name: checkpointName(v.kind, v.obj.GetUID())}, got)
	var ck *checkpoint
	if err == nil {
		ck, err = decodeCheckpoint(got)
	}
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to read the audit checkpoint again: %w", err)
	}
	a.mu.Lock()
	a.ckpts[v.obj.GetUID()] = ck
	if ck == nil {
		delete(a.ckpts, v.obj.GetUID())
	}
	a.mu.Unlock()
	return fmt.Errorf("the audit checkpoint changed meanwhile: %w", cause)
}

// drop deletes ck, the checkpoint of v's object.
func (a *Auditor) drop(ctx context.Context, v auditVersion, ck *checkpoint) error {
	if ck.resourceVersion != "" {
		obj := &v1.AuditCheckpoint{ObjectMeta: metav1.ObjectMeta{Namespace: ck.namespace, Name: checkpointName(v.kind, v.obj.GetUID())}}
		if err := a.Client.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("failed to delete the audit checkpoint %s/%s: %w", obj.Namespace, obj.Name, err)
		}
	}
	a.mu.Lock()
	delete(a.ckpts, v.obj.GetUID())
	a.mu.Unlock()
	return nil
}

func (a *Auditor) checkpointOf(uid types.UID) *checkpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ckpts[uid]
}

// auditWait is how soon a lifecycle controller looks again when the Auditor has not yet
// recorded the change that an expiry or a schedule step applies to.
const auditWait = 250 * time.Millisecond

// auditedUpTo reports whether a has recorded every change of obj up to its generation; true
// when there is no Auditor.
func auditedUpTo(a *Auditor, obj client.Object) bool {
	return a == nil || a.Audited(obj.GetUID(), obj.GetGeneration())
}

// checkpointName names the AuditCheckpoint of the object of the given kind and UID.
func checkpointName(kind Kind, uid types.UID) string {
	return strings.ToLower(string(kind)) + "-" + string(uid)
}

// action returns the audit action of verb ("created", "updated", "deleted") on kind.
func (k Kind) action(verb string) audit.Action {
	switch k {
	case KindUserFlagOverride:
		return audit.Action("user_override." + verb)
	case KindDeviceFlagOverride:
		return audit.Action("device_override." + verb)
	default:
		return audit.Action("flag." + verb)
	}
}

// auditedValues returns the audited values of a flag or an override.
func auditedValues(obj client.Object) (map[string]json.RawMessage, error) {
	switch o := obj.(type) {
	case *v1.FeatureFlag:
		return flagValues(o), nil
	case *v1.UserFlagOverride:
		return overrideValues(&o.Spec.FlagOverrideSpec), nil
	case *v1.DeviceFlagOverride:
		return overrideValues(&o.Spec.FlagOverrideSpec), nil
	default:
		return nil, fmt.Errorf("%T is not a flagops object", obj)
	}
}

// subjectOf returns the audit subject of an override, or nil for a flag.
func subjectOf(obj client.Object) *audit.Subject {
	switch obj.(type) {
	case *v1.UserFlagOverride, *v1.DeviceFlagOverride:
		return wrapOverride(obj).auditSubject()
	default:
		return nil
	}
}

func isDeletion(a audit.Action) bool { return strings.HasSuffix(string(a), ".deleted") }

// deprecatedAudited returns the status.audited that earlier versions left on obj, if any.
func deprecatedAudited(obj client.Object) *v1.AuditState {
	switch o := obj.(type) {
	case *v1.FeatureFlag:
		return o.Status.Audited
	case *v1.UserFlagOverride:
		return o.Status.Audited
	case *v1.DeviceFlagOverride:
		return o.Status.Audited
	default:
		return nil
	}
}

// migrated returns the unsaved checkpoint that status.audited of an earlier version gives,
// or nil.
func migrated(obj client.Object) (*checkpoint, error) {
	st := deprecatedAudited(obj)
	if st == nil {
		return nil, nil
	}
	values, err := gzipJSON(fromStatusValues(st.Values))
	if err != nil {
		return nil, fmt.Errorf("status.audited.values: %w", err)
	}
	return &checkpoint{namespace: obj.GetNamespace(), generation: st.Generation, values: values}, nil
}

// encode returns ck as the AuditCheckpoint of obj, of the given kind.
func (ck *checkpoint) encode(kind Kind, obj client.Object) (*v1.AuditCheckpoint, error) {
	var pending []byte
	if len(ck.pending) > 0 {
		// The values already hold one side of each pending record: the after-values of a
		// change, the before-values of a deletion. Only the other side is stored, so that a
		// checkpoint holds the object's values once, plus what one change replaced.
		recs := make([]audit.Record, len(ck.pending))
		for i, r := range ck.pending {
			recs[i] = r
			if isDeletion(r.Action) {
				recs[i].Before = nil
			} else {
				recs[i].After = nil
			}
		}
		var err error
		if pending, err = gzipJSON(recs); err != nil {
			return nil, err
		}
	}
	out := &v1.AuditCheckpoint{
		ObjectMeta: metav1.ObjectMeta{Namespace: ck.namespace, Name: checkpointName(kind, obj.GetUID()), ResourceVersion: ck.resourceVersion},
		Spec: v1.AuditCheckpointSpec{Kind: string(kind), Name: obj.GetName(), UID: string(obj.GetUID()),
			Generation: ck.generation, Values: ck.values, Pending: pending},
	}
	if !ck.auditedAt.IsZero() {
		out.Spec.AuditedAt = &metav1.MicroTime{Time: ck.auditedAt}
	}
	return out, nil
}

// decodeCheckpoint reads an AuditCheckpoint.
func decodeCheckpoint(in *v1.AuditCheckpoint) (*checkpoint, error) {
	ck := &checkpoint{namespace: in.Namespace, resourceVersion: in.ResourceVersion, generation: in.Spec.Generation, values: in.Spec.Values}
	if in.Spec.AuditedAt != nil {
		ck.auditedAt = in.Spec.AuditedAt.Time
	}
	// Read once here, so that values that do not decode stop the load rather than an audit.
	var values map[string]json.RawMessage
	if err := gunzipJSON(in.Spec.Values, &values); err != nil {
		return nil, fmt.Errorf("audit checkpoint %s/%s: spec.values: %w", in.Namespace, in.Name, err)
	}
	if len(in.Spec.Pending) > 0 {
		if err := gunzipJSON(in.Spec.Pending, &ck.pending); err != nil {
			return nil, fmt.Errorf("audit checkpoint %s/%s: spec.pending: %w", in.Namespace, in.Name, err)
		}
		for i, r := range ck.pending {
			side := map[string]json.RawMessage{}
			for _, k := range r.ChangedKeys {
				side[k] = json.RawMessage("null")
				if v, ok := values[k]; ok {
					side[k] = v
				}
			}
			if isDeletion(r.Action) {
				ck.pending[i].Before = side
			} else {
				ck.pending[i].After = side
			}
		}
	}
	return ck, nil
}

// gzipWriters recycles compressors: each holds about a megabyte of state, and a bulk import
// writes a checkpoint per object.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func gzipJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return nil, fmt.Errorf("encode the audit checkpoint: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress the audit checkpoint: %w", err)
	}
	// A copy of its own length: the Auditor keeps the values for as long as it leads, and
	// the buffer's array is up to twice as large.
	return bytes.Clone(buf.Bytes()), nil
}

func gunzipJSON(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}
