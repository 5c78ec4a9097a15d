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
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/evaluator/adapt"
)

// Kind identifies one of the three flagops kinds.
type Kind string

// The flagops kinds.
const (
	KindFeatureFlag        Kind = "FeatureFlag"
	KindUserFlagOverride   Kind = "UserFlagOverride"
	KindDeviceFlagOverride Kind = "DeviceFlagOverride"
)

// Kinds lists every flagops kind, flags first, so that a batch applies flags before the
// overrides that refer to them.
var Kinds = []Kind{KindFeatureFlag, KindUserFlagOverride, KindDeviceFlagOverride}

// NewObject returns an empty object of kind k.
func (k Kind) NewObject() client.Object {
	switch k {
	case KindFeatureFlag:
		return &v1.FeatureFlag{}
	case KindUserFlagOverride:
		return &v1.UserFlagOverride{}
	default:
		return &v1.DeviceFlagOverride{}
	}
}

// NewList returns an empty list of kind k.
func (k Kind) NewList() client.ObjectList {
	switch k {
	case KindFeatureFlag:
		return &v1.FeatureFlagList{}
	case KindUserFlagOverride:
		return &v1.UserFlagOverrideList{}
	default:
		return &v1.DeviceFlagOverrideList{}
	}
}

// subjectKind maps an override kind to the evaluator's subject kind.
func (k Kind) subjectKind() evaluator.SubjectKind {
	if k == KindDeviceFlagOverride {
		return evaluator.SubjectDevice
	}
	return evaluator.SubjectUser
}

type objKey struct {
	kind Kind
	nn   types.NamespacedName
}

// appliedVersion is the version of an object the syncer has applied (or, for a flag that does
// not compile, considered).
type appliedVersion struct {
	uid             types.UID
	resourceVersion string
	generation      int64
}

// versionOf is the version of obj.
func versionOf(obj client.Object) appliedVersion {
	return appliedVersion{obj.GetUID(), obj.GetResourceVersion(), obj.GetGeneration()}
}

// reflects reports whether the store already reflects obj, given the version v applied:
// the same object (uid) at the same resourceVersion, or at the same generation, which only
// moves when the spec does (a status, label or finalizer change is nothing the store holds).
// An object being deleted is never reflected.
func (v appliedVersion) reflects(obj client.Object) bool {
	if v.uid != obj.GetUID() || !obj.GetDeletionTimestamp().IsZero() {
		return false
	}
	return v.resourceVersion == obj.GetResourceVersion() || (v.generation > 0 && v.generation == obj.GetGeneration())
}

// FlagState is what the store holds for a FeatureFlag, as the lifecycle controller reports it.
type FlagState struct {
	// Key is the flag key (adapt.FlagKey).
	Key string
	// Generation is the newest generation the syncer has seen.
	Generation int64
	// Err is why Generation does not compile, or nil.
	Err error
	// ServingGeneration is the generation the store serves, 0 when none is served.
	ServingGeneration int64
	// ShadowedBy, when set, is the older FeatureFlag with the same key, which the store
	// serves instead of this one (see Syncer).
	ShadowedBy *types.NamespacedName
}

// flagKey is a flag key in a namespace: what the store serves one flag for.
type flagKey struct{ namespace, key string }

// keyClaim is a FeatureFlag object that claims a flag key.
type keyClaim struct {
	name    string
	created time.Time
}

// olderClaim orders the claims of a key: the oldest object first, then by name.
func olderClaim(a, b keyClaim) int {
	return cmp.Or(a.created.Compare(b.created), strings.Compare(a.name, b.name))
}

// CompareServed orders FeatureFlags with the same key as the Syncer does: the one it serves
// first.
func CompareServed(a, b *v1.FeatureFlag) int {
	return olderClaim(keyClaim{a.Name, a.CreationTimestamp.Time}, keyClaim{b.Name, b.CreationTimestamp.Time})
}

// Syncer applies flagops objects from the informer cache to the evaluator store. It is the
// only writer of the store, and only the sync controllers call it: the lifecycle controllers
// read the store, and learn of its changes through OnSync and the store's change feed (see
// storeSource). Every write re-reads the object from the cache under one lock, so the store
// only moves forward.
//
// A FeatureFlag whose spec does not compile is not applied: the store keeps serving the
// last valid version, and FlagState reports why.
//
// Flag keys are unique in a namespace: the webhook refuses a second flag with a key in use.
// Two creates that race past it both reach the syncer, which serves the older object (by
// creationTimestamp, then name) and leaves the other out with FlagState.ShadowedBy set; the
// order in which the objects arrive does not matter, so every replica picks the same one and
// nothing flaps. When the served object goes, the next oldest takes its place.
type Syncer struct {
	reader client.Reader
	store  *evaluator.Store

	mu      sync.Mutex
	applied map[objKey]appliedVersion
	// fed are the kinds that overrideFeeds deliver (SetupServingSync) instead of the cache.
	fed map[Kind]bool
	// pending holds, until the initial sync, the operations of the objects the feeds
	// delivered; nil once it is complete, and in a syncer without feeds.
	pending map[objKey]evaluator.Op
	flags   map[types.NamespacedName]FlagState
	// claims lists, per flag key, the FeatureFlags that have it, the served one first.
	claims map[flagKey][]keyClaim
	// observers are called, under mu, after each Sync that moved an object forward.
	observers map[int]func(Kind, types.NamespacedName)
	nextObs   int

	synced     atomic.Bool
	syncedDone chan struct{} // closed when the initial sync is complete
	// initialOver is closed when the initial sync has returned, complete or not.
	initialOver     chan struct{}
	closeInitialOne sync.Once
	syncs           atomic.Uint64
}

// NewSyncer returns a Syncer that reads objects through reader (the manager's cache).
func NewSyncer(reader client.Reader, store *evaluator.Store) *Syncer {
	return &Syncer{
		reader:      reader,
		store:       store,
		applied:     map[objKey]appliedVersion{},
		flags:       map[types.NamespacedName]FlagState{},
		claims:      map[flagKey][]keyClaim{},
		observers:   map[int]func(Kind, types.NamespacedName){},
		syncedDone:  make(chan struct{}),
		initialOver: make(chan struct{}),
	}
}

// Store returns the evaluator store the syncer writes.
func (s *Syncer) Store() *evaluator.Store { return s.store }

// Sync applies the cached state of one object to the store: an upsert while the object
// exists and is not being deleted, a delete otherwise. It returns the object it applied, or
// nil when the object is gone.
func (s *Syncer) Sync(ctx context.Context, kind Kind, nn types.NamespacedName) (client.Object, error) {
	s.syncs.Add(1)
	syncsTotal.Inc()
	s.mu.Lock()
	defer s.mu.Unlock()

	obj := kind.NewObject()
	if err := s.reader.Get(ctx, nn, obj); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("failed to get %s %s: %w", kind, nn, err)
		}
		obj = nil
	}
	key := objKey{kind, nn}
	if obj == nil || !obj.GetDeletionTimestamp().IsZero() {
		if kind == KindFeatureFlag {
			s.removeFlag(ctx, nn)
			return obj, nil
		}
		if _, ok := s.applied[key]; ok {
			s.apply(evaluator.DeleteOverride(kind.subjectKind(), nn.Namespace, nn.Name))
			delete(s.applied, key)
			s.notify(kind, nn)
		}
		return obj, nil
	}
	if v, ok := s.applied[key]; ok && v.reflects(obj) {
		return obj, nil
	}
	if f, ok := obj.(*v1.FeatureFlag); ok && s.flags[nn].Key != "" && s.flags[nn].Key != adapt.FlagKey(f) {
		// The key is immutable, so this is another object with the same name (deleted and
		// created again between two reads of the cache): release the old key first.
		s.removeFlag(ctx, nn)
	}
	op, err := s.op(kind, obj)
	s.applied[key] = versionOf(obj)
	switch {
	case errors.Is(err, errShadowed):
	case err != nil:
		// Not retried: the spec itself is invalid. The lifecycle controller reports it.
		ctrl.LoggerFrom(ctx).V(1).Info("Keeping the last valid version of an invalid flag", "flag", nn, "reason", err.Error())
	default:
		s.apply(op)
	}
	s.notify(kind, nn)
	return obj, nil
}

// errShadowed is returned by op for a FeatureFlag whose key an older FeatureFlag holds.
var errShadowed = errors.New("an older flag has the same key")

// claim records that the FeatureFlag nn, created at created, has key, and reports whether it
// is the one the store serves for that key. Callers hold s.mu.
func (s *Syncer) claim(nn types.NamespacedName, key string, created time.Time) bool {
	fk := flagKey{nn.Namespace, key}
	c := keyClaim{nn.Name, created}
	claims := slices.DeleteFunc(s.claims[fk], func(k keyClaim) bool { return k.name == nn.Name })
	i, _ := slices.BinarySearchFunc(claims, c, olderClaim)
	claims = slices.Insert(claims, i, c)
	s.claims[fk] = claims
	if i == 0 && len(claims) > 1 {
		// An older object arrived after a younger one: tell the younger one it lost.
		for _, other := range claims[1:] {
			s.notify(KindFeatureFlag, types.NamespacedName{Namespace: nn.Namespace, Name: other.name})
		}
	}
	return i == 0
}

// removeFlag takes the FeatureFlag nn out of the store, after it was deleted. When it was
// served and another flag has the same key, the oldest of those is served instead, as the
// cache holds it. Callers hold s.mu.
func (s *Syncer) removeFlag(ctx context.Context, nn types.NamespacedName) {
	st, known := s.flags[nn]
	delete(s.flags, nn)
	delete(s.applied, objKey{KindFeatureFlag, nn})
	if !known {
		return
	}
	fk := flagKey{nn.Namespace, st.Key}
	claims := s.claims[fk]
	served := len(claims) > 0 && claims[0].name == nn.Name
	claims = slices.DeleteFunc(claims, func(k keyClaim) bool { return k.name == nn.Name })
	if len(claims) == 0 {
		delete(s.claims, fk)
	} else {
		s.claims[fk] = claims
	}
	defer s.notify(KindFeatureFlag, nn)
	if !served {
		return
	}
	if len(claims) > 0 {
		next := types.NamespacedName{Namespace: nn.Namespace, Name: claims[0].name}
		f := &v1.FeatureFlag{}
		if err := s.reader.Get(ctx, next, f); err == nil && f.DeletionTimestamp.IsZero() && adapt.FlagKey(f) == st.Key {
			op, err := s.op(KindFeatureFlag, f)
			s.applied[objKey{KindFeatureFlag, next}] = versionOf(f)
			for _, c := range claims {
				s.notify(KindFeatureFlag, types.NamespacedName{Namespace: nn.Namespace, Name: c.name})
			}
			if err == nil {
				s.apply(op)
				return
			}
		}
		// Otherwise the next flag is gone or changed too, and its own Sync follows.
	}
	s.apply(evaluator.DeleteFlag(nn.Namespace, st.Key))
}

// FlagsOfKey returns the FeatureFlags of namespace ns that have key, the served one first.
func (s *Syncer) FlagsOfKey(ns, key string) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	claims := s.claims[flagKey{ns, key}]
	out := make([]types.NamespacedName, len(claims))
	for i, c := range claims {
		out[i] = types.NamespacedName{Namespace: ns, Name: c.name}
	}
	return out
}

// notify tells the observers that the store now reflects the cached version of one object.
// Callers hold s.mu.
func (s *Syncer) notify(kind Kind, nn types.NamespacedName) {
	for _, fn := range s.observers {
		fn(kind, nn)
	}
}

// OnSync registers fn, which is called after every Sync that applied a new version of an
// object (or its deletion) to the store, with the syncer's lock held: fn must not block and
// must not call the syncer. The returned function unregisters fn.
func (s *Syncer) OnSync(fn func(Kind, types.NamespacedName)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextObs
	s.nextObs++
	s.observers[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.observers, id)
	}
}

// SyncedGeneration returns the generation of the object that the store reflects, and false
// when the store does not hold it.
func (s *Syncer) SyncedGeneration(kind Kind, nn types.NamespacedName) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.applied[objKey{kind, nn}]
	return v.generation, ok
}

// op builds the store operation for obj, compiling flags so that an invalid spec never
// replaces a valid one.
func (s *Syncer) op(kind Kind, obj client.Object) (evaluator.Op, error) {
	switch o := obj.(type) {
	case *v1.FeatureFlag:
		nn := client.ObjectKeyFromObject(o)
		st := s.flags[nn]
		st.Key, st.Generation = adapt.FlagKey(o), o.Generation
		compiled, err := evaluator.Compile(st.Key, adapt.FlagSpec(o))
		st.Err = err
		served := s.claim(nn, st.Key, o.CreationTimestamp.Time)
		switch {
		case !served:
			// Not served, so no version of it is: when it takes over, it starts afresh.
			st.ServingGeneration = 0
		case err == nil:
			st.ServingGeneration = o.Generation
		}
		s.flags[nn] = st
		switch {
		case !served:
			return evaluator.Op{}, errShadowed
		case err != nil:
			return evaluator.Op{}, fmt.Errorf("flag %s does not compile: %w", nn, err)
		}
		return evaluator.UpsertCompiledFlag(o.Namespace, compiled), nil
	case *v1.UserFlagOverride:
		return evaluator.UpsertOverride(adapt.UserOverride(o)), nil
	case *v1.DeviceFlagOverride:
		return evaluator.UpsertOverride(adapt.DeviceOverride(o)), nil
	default:
		return evaluator.Op{}, fmt.Errorf("unexpected object type %T for %s", obj, kind)
	}
}

// apply writes ops to the store and records metrics. The store's clock wakes on the write by
// itself. Callers hold s.mu.
func (s *Syncer) apply(ops ...evaluator.Op) {
	start := time.Now()
	snap, _, err := s.store.Apply(ops...)
	storeApplySeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		// Ops are built from validated API objects; a malformed op is a programming error.
		panic(fmt.Sprintf("flagops: the store rejected an operation built from an API object: %v", err))
	}
	storeRevision.Set(float64(snap.Revision()))
}

// FlagState reports what the store holds for a FeatureFlag.
func (s *Syncer) FlagState(nn types.NamespacedName) (FlagState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.flags[nn]
	if claims := s.claims[flagKey{nn.Namespace, st.Key}]; ok && len(claims) > 0 && claims[0].name != nn.Name {
		st.ShadowedBy = &types.NamespacedName{Namespace: nn.Namespace, Name: claims[0].name}
	}
	return st, ok
}

// InitialSync applies every cached object of every kind to the store in one batch, then marks
// the syncer ready. It runs on every replica, after the cache has synced.
func (s *Syncer) InitialSync(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ops []evaluator.Op
	for _, kind := range Kinds {
		if s.fed[kind] {
			continue
		}
		list := kind.NewList()
		// The Syncer only reads the objects (op copies what the store keeps), so the list
		// shares them with the cache rather than copying every object.
		if err := s.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			return fmt.Errorf("failed to list %s objects for the initial sync: %w", kind, err)
		}
		objs, err := objectsOf(list)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			if f, ok := obj.(*v1.FeatureFlag); ok && f.DeletionTimestamp.IsZero() {
				// Every claim first, so that only the oldest flag of each key is applied.
				s.claim(client.ObjectKeyFromObject(f), adapt.FlagKey(f), f.CreationTimestamp.Time)
			}
		}
		for _, obj := range objs {
			if !obj.GetDeletionTimestamp().IsZero() {
				continue
			}
			s.applied[objKey{kind, client.ObjectKeyFromObject(obj)}] = versionOf(obj)
			op, err := s.op(kind, obj)
			if err != nil {
				continue
			}
			ops = append(ops, op)
		}
	}
	// What the feeds delivered. The order within one write does not matter: competing
	// overrides are ranked by their own fields (evaluator.before), not by arrival.
	for _, op := range s.pending {
		ops = append(ops, op)
	}
	s.pending = nil
	s.apply(ops...)
	s.synced.Store(true)
	close(s.syncedDone)
	ctrl.LoggerFrom(ctx).Info("Initial sync complete", "objects", len(ops), "revision", s.store.Snapshot().Revision())
	return nil
}

// reflects reports whether the store already reflects obj of kind (see appliedVersion.reflects).
func (s *Syncer) reflects(kind Kind, obj client.Object) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.applied[objKey{kind, client.ObjectKeyFromObject(obj)}]
	return ok && v.reflects(obj)
}

// endInitial marks the initial sync as over, whether it completed or not.
func (s *Syncer) endInitial() { s.closeInitialOne.Do(func() { close(s.initialOver) }) }

// Syncs returns how many times Sync was called, whoever called it.
func (s *Syncer) Syncs() uint64 { return s.syncs.Load() }

// WhenSynced returns a channel that is closed when the initial sync is complete.
func (s *Syncer) WhenSynced() <-chan struct{} { return s.syncedDone }

// Synced reports whether the initial sync is complete.
func (s *Syncer) Synced() bool { return s.synced.Load() }

// ReadyCheck is a readyz check that passes once the initial sync is complete.
func (s *Syncer) ReadyCheck(_ *http.Request) error {
	if !s.Synced() {
		return errors.New("the initial sync of flags and overrides into the evaluator is not complete")
	}
	return nil
}

// RunClock runs the store's clock (evaluator.Store.RunClock), which ticks it at every override
// expiry and schedule step so that change sets report them when they happen, and keeps
// flagops_store_revision current, ticks included. It returns when ctx is done.
func (s *Syncer) RunClock(ctx context.Context) error {
	go s.store.RunClock(ctx)
	for {
		snap := s.store.Snapshot()
		storeRevision.Set(float64(snap.Revision()))
		_, wake, _ := s.store.Changes(snap.Revision())
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// objectsOf returns the items of a flagops list.
func objectsOf(list client.ObjectList) ([]client.Object, error) {
	var out []client.Object
	switch l := list.(type) {
	case *v1.FeatureFlagList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *v1.UserFlagOverrideList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *v1.DeviceFlagOverrideList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	default:
		return nil, fmt.Errorf("unexpected list type %T", list)
	}
	return out, nil
}
