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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/flagops/flagops/api/v1alpha1"
	"github.com/flagops/flagops/evaluator"
	"github.com/flagops/flagops/internal/audit"
)

// builderIndexer registers SetupIndexes' field indexes on a fake client builder.
type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	i.b.WithIndex(obj, field, fn)
	return nil
}

// fakeCache returns a fake client with the cache indexes and a status subresource, holding objs.
func fakeCache(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	for _, o := range objs {
		withUID(o)
	}
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v1.FeatureFlag{}, &v1.UserFlagOverride{}, &v1.DeviceFlagOverride{})
	if err := SetupIndexes(context.Background(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	return b.Build()
}

// withUID gives obj a UID, which audit records need and the fake client does not set.
func withUID[T client.Object](obj T) T {
	obj.SetUID(types.UID("uid-" + obj.GetNamespace() + "-" + obj.GetName()))
	return obj
}

func req(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func sortedRequests(rs []reconcile.Request) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

func TestFlagsOfChange(t *testing.T) {
	// The requests name objects, found by key: a/y is the key of object a/why, and two
	// objects have the key a/x (the second is not served, but its status follows the key).
	s := NewSyncer(nil, nil)
	s.claims[flagKey{"a", "x"}] = []keyClaim{{name: "x"}, {name: "x-again"}}
	s.claims[flagKey{"b", "x"}] = []keyClaim{{name: "x"}}
	s.claims[flagKey{"a", "y"}] = []keyClaim{{name: "why"}}
	tests := []struct {
		name string
		cs   evaluator.ChangeSet
		want []string
	}{
		{name: "empty", cs: evaluator.ChangeSet{Revision: 3}, want: []string{}},
		{name: "a flag write", cs: evaluator.ChangeSet{Flags: []evaluator.FlagRef{{Namespace: "a", Key: "x"}}}, want: []string{"a/x", "a/x-again"}},
		{name: "a key no object has", cs: evaluator.ChangeSet{Flags: []evaluator.FlagRef{{Namespace: "a", Key: "gone"}}}, want: []string{}},
		{name: "override changes of one flag, merged", cs: evaluator.ChangeSet{Subjects: []evaluator.SubjectChange{
			{Namespace: "a", Kind: evaluator.SubjectUser, SubjectID: "u1", Key: "x"},
			{Namespace: "a", Kind: evaluator.SubjectDevice, SubjectID: "d1", Key: "x"},
			{Namespace: "b", Kind: evaluator.SubjectUser, SubjectID: "u1", Key: "x"},
		}}, want: []string{"a/x", "a/x-again", "b/x"}},
		{name: "flag and subject", cs: evaluator.ChangeSet{Flags: []evaluator.FlagRef{{Namespace: "a", Key: "x"}},
			Subjects: []evaluator.SubjectChange{{Namespace: "a", Kind: evaluator.SubjectUser, SubjectID: "u1", Key: "y"}}},
			want: []string{"a/why", "a/x", "a/x-again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sortedRequests(flagsOfChange(s)(context.Background(), tt.cs)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOverridesOfChange(t *testing.T) {
	c := fakeCache(t,
		userOverride("a", "u1-x", "u1", entry("x", true)),
		userOverride("a", "u1-y", "u1", entry("y", true)),
		userOverride("a", "u2-x", "u2", entry("x", false)),
		userOverride("b", "u1-x", "u1", entry("x", true)),
		deviceOverride("a", "d1-x", "d1", entry("x", true)),
	)
	user := func(id, key string) evaluator.SubjectChange {
		return evaluator.SubjectChange{Namespace: "a", Kind: evaluator.SubjectUser, SubjectID: id, Key: key}
	}
	tests := []struct {
		name string
		kind Kind
		cs   evaluator.ChangeSet
		want []string
	}{
		{name: "a user's change reaches every override of that user", kind: KindUserFlagOverride,
			cs: evaluator.ChangeSet{Subjects: []evaluator.SubjectChange{user("u1", "x")}}, want: []string{"a/u1-x", "a/u1-y"}},
		{name: "a user's change does not reach device overrides", kind: KindDeviceFlagOverride,
			cs: evaluator.ChangeSet{Subjects: []evaluator.SubjectChange{user("u1", "x")}}, want: []string{}},
		{name: "a flag write reaches the overrides naming it", kind: KindUserFlagOverride,
			cs: evaluator.ChangeSet{Flags: []evaluator.FlagRef{{Namespace: "a", Key: "x"}}}, want: []string{"a/u1-x", "a/u2-x"}},
		{name: "a flag write reaches device overrides too", kind: KindDeviceFlagOverride,
			cs: evaluator.ChangeSet{Flags: []evaluator.FlagRef{{Namespace: "a", Key: "x"}}}, want: []string{"a/d1-x"}},
		{name: "each override once", kind: KindUserFlagOverride,
			cs: evaluator.ChangeSet{Flags: []evaluator.FlagRef{{Namespace: "a", Key: "x"}},
				Subjects: []evaluator.SubjectChange{user("u1", "x"), user("u1", "y"), user("u2", "x")}},
			want: []string{"a/u1-x", "a/u1-y", "a/u2-x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sortedRequests(overridesOfChange(c, tt.kind)(context.Background(), tt.cs))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// nextRequest waits for the next request in q, or fails the test after a generous timeout.
func nextRequest(t *testing.T, q workqueue.TypedRateLimitingInterface[reconcile.Request]) reconcile.Request {
	t.Helper()
	got := make(chan reconcile.Request, 1)
	go func() {
		r, shutdown := q.Get()
		if !shutdown {
			q.Done(r)
			got <- r
		}
	}()
	select {
	case r := <-got:
		return r
	case <-time.After(20 * time.Second):
		q.ShutDown()
		t.Fatal("no request was queued")
		return reconcile.Request{}
	}
}

func newQueue(t *testing.T) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(q.ShutDown)
	return q
}

func TestStoreSource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := fakeCache(t, boolFlag("a", "x", true), userOverride("a", "u1-x", "u1", entry("x", true)))
	syncer := NewSyncer(c, evaluator.NewStore())
	flags, overrides := newQueue(t), newQueue(t)
	sources := []*storeSource{
		{syncer: syncer, kind: KindFeatureFlag, reader: c, requests: flagsOfChange(syncer)},
		{syncer: syncer, kind: KindUserFlagOverride, reader: c, requests: overridesOfChange(c, KindUserFlagOverride)},
	}
	for i, q := range []workqueue.TypedRateLimitingInterface[reconcile.Request]{flags, overrides} {
		if err := sources[i].Start(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(sources[0].String(), "FeatureFlag") {
		t.Errorf("String() = %q, want the kind", sources[0].String())
	}

	// The initial sync enqueues every object of the kind.
	if err := syncer.InitialSync(ctx); err != nil {
		t.Fatal(err)
	}
	if r := nextRequest(t, flags); r != req("a", "x") {
		t.Errorf("after the initial sync, the flag source queued %v", r)
	}
	if r := nextRequest(t, overrides); r != req("a", "u1-x") {
		t.Errorf("after the initial sync, the override source queued %v", r)
	}

	// A new override of the flag: the Syncer's notification queues the override, the store's
	// change set queues the flag, whose count it moves.
	if err := c.Create(ctx, userOverride("a", "u2-x", "u2", entry("x", true))); err != nil {
		t.Fatal(err)
	}
	if _, err := syncer.Sync(ctx, KindUserFlagOverride, types.NamespacedName{Namespace: "a", Name: "u2-x"}); err != nil {
		t.Fatal(err)
	}
	if r := nextRequest(t, flags); r != req("a", "x") {
		t.Errorf("after an override write, the flag source queued %v", r)
	}
	if r := nextRequest(t, overrides); r != req("a", "u2-x") {
		t.Errorf("after an override write, the override source queued %v", r)
	}

	// Stopping a source unregisters its Syncer observer.
	cancel()
	gomega.NewWithT(t).Eventually(func() int {
		syncer.mu.Lock()
		defer syncer.mu.Unlock()
		return len(syncer.observers)
	}, 20*time.Second, 10*time.Millisecond).Should(gomega.BeZero(), "observers still registered after the sources stopped")
}

func TestStoreSourceStopsBeforeTheInitialSync(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	syncer := NewSyncer(fakeCache(t), evaluator.NewStore())
	s := &storeSource{syncer: syncer, kind: KindFeatureFlag, reader: fakeCache(t), requests: flagsOfChange(syncer)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, newQueue(t))
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the source did not stop")
	}
}

// TestStoreSourceResyncsWhenHistoryIsLost checks that a source that falls behind the store's
// change history enqueues every object of its kind.
func TestStoreSourceResyncsWhenHistoryIsLost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := fakeCache(t, boolFlag("a", "x", true), boolFlag("a", "y", true))
	store := evaluator.NewStore(evaluator.WithChangeHistory(1))
	syncer := NewSyncer(c, store)
	if err := syncer.InitialSync(ctx); err != nil {
		t.Fatal(err)
	}
	// The mapping blocks on its first change set, so that the store moves on meanwhile.
	blocked, release := make(chan struct{}), make(chan struct{})
	first := true
	s := &storeSource{syncer: syncer, kind: KindFeatureFlag, reader: c, requests: func(context.Context, evaluator.ChangeSet) []reconcile.Request {
		if first {
			first = false
			close(blocked)
			<-release
		}
		return nil
	}}
	q := newQueue(t)
	if err := s.Start(ctx, q); err != nil {
		t.Fatal(err)
	}
	got := map[reconcile.Request]bool{}
	for range 2 { // the initial enqueue of both flags
		got[nextRequest(t, q)] = true
	}
	if !got[req("a", "x")] || !got[req("a", "y")] {
		t.Fatalf("the initial enqueue queued %v", got)
	}
	if _, _, err := store.Apply(evaluator.DeleteFlag("a", "nope")); err != nil {
		t.Fatal(err)
	}
	<-blocked
	for range 3 {
		if _, _, err := store.Apply(evaluator.DeleteFlag("a", "nope")); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	got = map[reconcile.Request]bool{}
	for range 2 {
		got[nextRequest(t, q)] = true
	}
	if !got[req("a", "x")] || !got[req("a", "y")] {
		t.Errorf("the resync queued %v, want both flags", got)
	}
}

// TestLifecycleReconcilersOnlyReadTheStore runs the flag and override reconcilers on a synced
// store: they report counts and invalid entries from it, and neither sync nor write it.
func TestLifecycleReconcilersOnlyReadTheStore(t *testing.T) {
	ctx := context.Background()
	c := fakeCache(t,
		boolFlag("a", "x", true),
		userOverride("a", "good", "u1", entry("x", false)),
		userOverride("a", "unknown", "u2", entry("nope", true)),
		deviceOverride("a", "dev", "d1", entry("x", true)),
	)
	store := evaluator.NewStore()
	syncer := NewSyncer(c, store)
	if err := syncer.InitialSync(ctx); err != nil {
		t.Fatal(err)
	}
	rev, syncs := store.Snapshot().Revision(), syncer.Syncs()
	rec := events.NewFakeRecorder(100)
	actors := Actors{APIReader: c, Self: audit.Actor{Username: "manager"}}
	flags := &FlagReconciler{Client: c, Syncer: syncer, Recorder: rec, Audit: audit.NewMemory(), Actors: actors}
	users := &OverrideReconciler{Client: c, Syncer: syncer, Kind: KindUserFlagOverride, Recorder: rec, Audit: audit.NewMemory(), Actors: actors}
	devices := &OverrideReconciler{Client: c, Syncer: syncer, Kind: KindDeviceFlagOverride, Recorder: rec, Audit: audit.NewMemory(), Actors: actors}
	for _, step := range []struct {
		r   reconcile.Reconciler
		req reconcile.Request
	}{
		{flags, req("a", "x")}, {users, req("a", "good")}, {users, req("a", "unknown")}, {devices, req("a", "dev")},
		{flags, req("a", "gone")}, {users, req("a", "gone")},
	} {
		if _, err := step.r.Reconcile(ctx, step.req); err != nil {
			t.Fatalf("reconcile %v: %v", step.req, err)
		}
	}
	if got := store.Snapshot().Revision(); got != rev {
		t.Errorf("the store moved from revision %d to %d", rev, got)
	}
	if got := syncer.Syncs(); got != syncs {
		t.Errorf("the lifecycle reconcilers called Sync %d times", got-syncs)
	}

	f := &v1.FeatureFlag{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "a", Name: "x"}, f); err != nil {
		t.Fatal(err)
	}
	if f.Status.UserOverrides != 1 || f.Status.DeviceOverrides != 1 || f.Status.ObservedGeneration != f.Generation {
		t.Errorf("flag status: users %d, devices %d, observed %d of %d; want 1, 1 and the generation",
			f.Status.UserOverrides, f.Status.DeviceOverrides, f.Status.ObservedGeneration, f.Generation)
	}
	o := &v1.UserFlagOverride{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "a", Name: "unknown"}, o); err != nil {
		t.Fatal(err)
	}
	if len(o.Status.InvalidKeys) != 1 || o.Status.InvalidKeys[0].Key != "nope" ||
		apimeta.IsStatusConditionTrue(o.Status.Conditions, v1.ConditionReady) {
		t.Errorf("the override naming an unknown flag reports invalid keys %v and conditions %v", o.Status.InvalidKeys, o.Status.Conditions)
	}
}

// TestLifecycleStatusWaitsForTheStore checks that the reconcilers leave status alone before
// the initial sync, and while the store does not hold the object yet.
func TestLifecycleStatusWaitsForTheStore(t *testing.T) {
	ctx := context.Background()
	c := fakeCache(t, boolFlag("a", "x", true), userOverride("a", "good", "u1", entry("x", false)))
	syncer := NewSyncer(c, evaluator.NewStore())
	rec := events.NewFakeRecorder(100)
	actors := Actors{APIReader: c, Self: audit.Actor{Username: "manager"}}
	flags := &FlagReconciler{Client: c, Syncer: syncer, Recorder: rec, Audit: audit.NewMemory(), Actors: actors}
	users := &OverrideReconciler{Client: c, Syncer: syncer, Kind: KindUserFlagOverride, Recorder: rec, Audit: audit.NewMemory(), Actors: actors}
	// reported reconciles flag name and override name, and tells whether each has a Ready
	// condition.
	reported := func(flag, override string) (bool, bool) {
		t.Helper()
		if _, err := flags.Reconcile(ctx, req("a", flag)); err != nil {
			t.Fatal(err)
		}
		if _, err := users.Reconcile(ctx, req("a", override)); err != nil {
			t.Fatal(err)
		}
		f, o := &v1.FeatureFlag{}, &v1.UserFlagOverride{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "a", Name: flag}, f); err != nil {
			t.Fatal(err)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "a", Name: override}, o); err != nil {
			t.Fatal(err)
		}
		return apimeta.FindStatusCondition(f.Status.Conditions, v1.ConditionReady) != nil,
			apimeta.FindStatusCondition(o.Status.Conditions, v1.ConditionReady) != nil
	}

	if fr, or := reported("x", "good"); fr || or {
		t.Errorf("before the initial sync: flag reported %v, override reported %v", fr, or)
	}
	if err := syncer.InitialSync(ctx); err != nil {
		t.Fatal(err)
	}
	if fr, or := reported("x", "good"); !fr || !or {
		t.Errorf("after the initial sync: flag reported %v, override reported %v", fr, or)
	}

	// Objects the store does not hold yet.
	if err := c.Create(ctx, withUID(boolFlag("a", "y", true))); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, withUID(userOverride("a", "later", "u2", entry("y", true)))); err != nil {
		t.Fatal(err)
	}
	if fr, or := reported("y", "later"); fr || or {
		t.Errorf("before the sync: flag reported %v, override reported %v", fr, or)
	}
	for kind, name := range map[Kind]string{KindFeatureFlag: "y", KindUserFlagOverride: "later"} {
		if _, err := syncer.Sync(ctx, kind, types.NamespacedName{Namespace: "a", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if fr, or := reported("y", "later"); !fr || !or {
		t.Errorf("after the sync: flag reported %v, override reported %v", fr, or)
	}
}
